"""Every router of the API, mounted under /api, plus the probes and metrics at the root."""

from fastapi import APIRouter

from app.admin.router import router as admin_router
from app.apikeys.router import router as apikeys_router
from app.chatbots.router import router as chatbots_router
from app.core.metrics import metrics_router
from app.health.router import api_router as health_api_router
from app.health.router import probe_router
from app.users.router import auth_router, users_router

api_router = APIRouter(prefix="/api")
api_router.include_router(health_api_router)
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(admin_router)
api_router.include_router(chatbots_router)
api_router.include_router(apikeys_router)

root_router = APIRouter()
root_router.include_router(probe_router)
root_router.include_router(metrics_router)
