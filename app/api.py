"""Every router of the API, mounted under /api, plus the probes and metrics at the root."""

from fastapi import APIRouter

from app.core.metrics import metrics_router
from app.health.router import api_router as health_api_router
from app.health.router import probe_router

api_router = APIRouter(prefix="/api")
api_router.include_router(health_api_router)

root_router = APIRouter()
root_router.include_router(probe_router)
root_router.include_router(metrics_router)
