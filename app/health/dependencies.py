"""HTTP dependencies of the health domain."""

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.container import container_of
from app.health.service import HealthService


async def get_health_service(connection: HTTPConnection) -> HealthService:
    # Probes run often: the container is read directly, without a dependency of its own.
    return container_of(connection).health


HealthServiceDep = Annotated[HealthService, Depends(get_health_service)]
