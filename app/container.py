"""The composition point of a process: its clients (`Resources`) and the per-process services
built over them, each made on first use, so a process holds exactly what it touches.

The API opens one in its lifespan (`BotSmithApp.container`), the ingestion worker and the CLI
open their own; the operator needs none (it uses core only). Domain `dependencies.py` builders
take this container and nothing else. This module imports only core and the leaf modules of the
per-process services; no domain module it imports may import it back (the import contracts in
pyproject.toml keep that true).
"""

import asyncio
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Annotated, Any, cast

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.ratelimit import RateLimiter
from app.core.resources import Resources, close_resources, open_resources
from app.core.throttle import FailureCounter
from app.health.service import HealthService
from app.realtime.hub import Hub
from app.retrieval.service import RetrievalIndexes
from app.sources.pipeline import IngestionPipeline
from app.sources.queue import IngestQueue

LOGIN_FAILURES_PREFIX = "botsmith:login-failures:"


class ContainerNotOpenError(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the container is used before open() or after close()")


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database_prepared = asyncio.Event()
        self._resources: Resources | None = None

    def open(self) -> "Container":
        """Creates the clients (they connect lazily); in the API this runs in the lifespan."""
        self._resources = open_resources(self.settings)
        return self

    async def close(self) -> None:
        if self._resources is not None:
            await close_resources(self._resources)
            self._resources = None

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise ContainerNotOpenError()
        return self._resources

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.resources.redis, self.resources.redis_circuit)

    @cached_property
    def login_throttle(self) -> FailureCounter:
        settings = self.settings
        return FailureCounter(
            self.resources.redis,
            LOGIN_FAILURES_PREFIX,
            settings.login_max_failures,
            settings.login_failure_window_seconds,
        )

    @cached_property
    def retrieval_indexes(self) -> RetrievalIndexes:
        return RetrievalIndexes()

    @cached_property
    def ingestion_pipeline(self) -> IngestionPipeline:
        return IngestionPipeline.over(self.resources)

    @cached_property
    def ingest_queue(self) -> IngestQueue:
        """Jobs go to the Redis Stream; without Redis this process runs them itself."""
        return IngestQueue(
            self.resources.redis,
            self.settings.ingest_stream,
            run_locally=lambda source_id: self.ingestion_pipeline.process(source_id),
        )

    @cached_property
    def hub(self) -> Hub:
        settings = self.settings
        return Hub(
            settings.websocket_max_connections,
            settings.websocket_max_per_user,
            settings.websocket_send_queue,
        )

    @cached_property
    def health(self) -> HealthService:
        return HealthService(self.resources, self.database_prepared)


class BotSmithApp(FastAPI):
    """The FastAPI application with its process's container, and the hooks its server runs
    before it closes connections (`app.serving`)."""

    def __init__(self, container: Container, **options: Any) -> None:
        super().__init__(**options)
        self.container = container
        self.before_shutdown: list[Callable[[], Awaitable[None]]] = []


async def get_container(connection: HTTPConnection) -> Container:
    """The container of the application serving this request or WebSocket."""
    return cast(BotSmithApp, connection.app).container


ContainerDep = Annotated[Container, Depends(get_container)]
