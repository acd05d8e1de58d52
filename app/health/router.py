"""Health endpoints: the seed's /api/health, and the probes Kubernetes uses."""

from fastapi import APIRouter, Response, status

from app.health.dependencies import HealthServiceDep
from app.health.schemas import HealthReport, Liveness, Readiness

api_router = APIRouter(tags=["health"])
probe_router = APIRouter(tags=["health"])


@api_router.get("/health", summary="Service health in the seed guide's shape")
async def health(service: HealthServiceDep) -> HealthReport:
    return await service.report()


@probe_router.get("/livez", summary="Liveness: the process answers (no I/O)")
async def livez() -> Liveness:
    return Liveness(status="alive")


@probe_router.get(
    "/readyz",
    summary="Readiness: MongoDB, and Redis when configured, answer",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
)
async def readyz(service: HealthServiceDep, response: Response) -> Readiness:
    readiness = await service.readiness()
    if readiness.status != "ready":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
