"""The composition point of the API process: its clients (`Resources`) and the per-process
services built over them, opened once per worker in the lifespan (`app.main.open_container`).

Domain `dependencies.py` builders take this container and nothing else. At run time this module
imports only core: the domain types below are named for the type checker alone, so a domain that
reads the container does not import the other domains (the import contracts check it). The
ingestion worker and the CLI need no API services: they open `Resources` only.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.ratelimit import RateLimiter
from app.core.resources import Resources
from app.core.throttle import FailureCounter

if TYPE_CHECKING:
    from app.health.service import HealthService
    from app.realtime.hub import Hub
    from app.retrieval.service import RetrievalIndexes
    from app.sources.queue import IngestQueue
    from app.webhooks.delivery import Egress


@dataclass(frozen=True, slots=True)
class Container:
    resources: Resources
    rate_limiter: RateLimiter
    login_throttle: FailureCounter
    retrieval_indexes: "RetrievalIndexes"
    ingest_queue: "IngestQueue"
    hub: "Hub"
    health: "HealthService"
    # How webhook endpoints are checked and reached (app.sources.egress).
    webhook_egress: "Egress"

    @property
    def settings(self) -> Settings:
        return self.resources.settings


class BotSmithApp(FastAPI):
    """The FastAPI application: its settings, its container (set by the lifespan), and the hooks
    its server runs before it closes connections (`app.serving`)."""

    container: Container

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        self.before_shutdown: list[Callable[[], Awaitable[None]]] = []
        # Set when the server stops: every response then closes its connection (`app.serving`).
        self.draining = False


def container_of(connection: HTTPConnection) -> Container:
    """The container of the application serving this request or WebSocket."""
    return cast(BotSmithApp, connection.app).container


async def get_container(connection: HTTPConnection) -> Container:
    return container_of(connection)


ContainerDep = Annotated[Container, Depends(get_container)]
