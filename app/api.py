"""Every router of the service (the API under /api, the probes and metrics at the root), and
what the middleware must know of their paths."""

from fastapi import APIRouter, FastAPI

from app.admin.router import router as admin_router
from app.analytics.router import router as analytics_router
from app.apikeys.router import router as apikeys_router
from app.chat.public import router as public_chat_router
from app.chat.router import router as chat_router
from app.chatbots.router import router as chatbots_router
from app.core.metrics import metrics_router
from app.core.middleware import PathRules
from app.evaluation.router import router as evaluation_router
from app.health.router import api_router as health_api_router
from app.health.router import probe_router
from app.realtime.router import router as realtime_router
from app.retrieval.router import router as retrieval_router
from app.sources.router import router as sources_router
from app.users.router import auth_router, users_router
from app.widget.router import router as widget_router

API_ROUTERS: tuple[APIRouter, ...] = (
    health_api_router,
    auth_router,
    users_router,
    admin_router,
    chatbots_router,
    apikeys_router,
    sources_router,
    retrieval_router,
    chat_router,
    public_chat_router,
    realtime_router,
    analytics_router,
    evaluation_router,
)
ROOT_ROUTERS: tuple[APIRouter, ...] = (probe_router, metrics_router, widget_router)

PATH_RULES = PathRules(
    unlimited=frozenset({"/livez", "/readyz", "/metrics"}),
    never_queued=frozenset({"/livez", "/readyz", "/metrics", "/api/health"}),
    auth=frozenset({"/api/auth/login", "/api/auth/register", "/api/auth/refresh"}),
    public_prefix="/api/public/",
)


def include_routers(app: FastAPI) -> None:
    # Each router is included directly: every level of nesting costs a match per request.
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api")
    for router in ROOT_ROUTERS:
        app.include_router(router)
