"""Builds the ASGI application; clients are opened in the lifespan, once per worker process."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import api_router, root_router
from app.core.config import Settings, get_settings
from app.core.db import create_mongo_client
from app.core.errors import install_error_handlers
from app.core.logging import setup_logging
from app.core.redis import create_redis_client
from app.core.resources import Resources
from app.core.tracing import setup_tracing
from app.health.service import REDIS_FALLBACK, HealthService

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    tracer_provider = setup_tracing(settings)
    mongo = create_mongo_client(settings)
    redis = create_redis_client(settings)
    if redis is None:
        logger.warning("redis: %s; limits, cache and fan-out stay in-process", REDIS_FALLBACK)
    resources = Resources(settings=settings, mongo=mongo, db=mongo[settings.db_name], redis=redis)
    app.state.resources = resources
    app.state.health = HealthService(resources)
    try:
        yield
    finally:
        if redis is not None:
            await redis.aclose()
        await mongo.close()
        if tracer_provider is not None:
            tracer_provider.shutdown()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings)
    app = FastAPI(
        title="BotSmith AI",
        version="0.1.0",
        summary="Self-hostable backend for AI chatbot builders",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(root_router)
    return app
