"""Builds the ASGI application; clients are opened in the lifespan, once per worker process."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from pymongo.errors import PyMongoError

from app.api import include_routers
from app.chatbots.repository import ChatbotRepository
from app.chatbots.service import ChatbotService
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.http import http_client
from app.core.indexes import ensure_indexes
from app.core.logging import setup_logging
from app.core.metrics import record_memory_every
from app.core.middleware import (
    ConcurrencyLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    TimeoutMiddleware,
)
from app.core.resources import Resources, close_resources, open_resources
from app.core.routes import RouteTemplates
from app.core.throttle import FailureCounter
from app.core.tracing import setup_tracing
from app.health.service import REDIS_FALLBACK, HealthService
from app.realtime.hub import Hub
from app.retrieval.service import RetrievalIndexes
from app.serving import BEFORE_SHUTDOWN
from app.sources.dependencies import ingestion_service
from app.sources.queue import IngestQueue

MEMORY_SAMPLE_SECONDS = 10.0

logger = logging.getLogger(__name__)


async def prepare_database(resources: Resources, prepared: asyncio.Event) -> None:
    """Creates missing indexes and finishes interrupted deletions, retrying while MongoDB is down;
    readiness waits for it so no request runs before the unique indexes exist."""
    delay = 0.5
    while True:
        try:
            if resources.settings.mongo_ensure_indexes:
                await ensure_indexes(resources.db)
            chatbots = ChatbotRepository(resources.db, resources.cache, resources.reads)
            await ChatbotService(chatbots).resume_purges()
        except PyMongoError as error:
            logger.warning("database not prepared yet, retrying in %.1f s: %s", delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        else:
            prepared.set()
            return


async def push_status(hub: Hub, health: HealthService, interval: float) -> None:
    """The health summary to `status` subscribers: when it changes, and every `interval`."""
    last_sent = 0.0
    while True:
        report = (await health.report()).model_dump()
        now = asyncio.get_running_loop().time()
        if report != hub.last_status or now - last_sent >= interval:
            hub.push_status(report)
            last_sent = now
        await asyncio.sleep(min(1.0, interval))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    resources = open_resources(settings)
    redis = resources.redis
    if redis is None:
        logger.warning("redis: %s; limits, cache and fan-out stay in-process", REDIS_FALLBACK)
    app.state.resources = resources
    http = app.state.http = http_client(settings)
    app.state.ingest_queue = IngestQueue(
        redis,
        settings.ingest_stream,
        run_locally=lambda source_id: ingestion_service(resources, http, None).process(source_id),
    )
    app.state.retrieval_indexes = RetrievalIndexes()
    prepared = asyncio.Event()
    health = app.state.health = HealthService(resources, prepared)
    hub = app.state.hub = Hub(
        settings.websocket_max_connections,
        settings.websocket_max_per_user,
        settings.websocket_send_queue,
    )
    resources.events.listen(hub.on_event)
    resources.events.start()
    BEFORE_SHUTDOWN.append(hub.close_all)
    app.state.login_throttle = FailureCounter(
        redis,
        "botsmith:login-failures:",
        settings.login_max_failures,
        settings.login_failure_window_seconds,
    )
    background = [
        asyncio.create_task(prepare_database(resources, prepared)),
        asyncio.create_task(resources.reads.watch(settings.read_policy_reload_seconds)),
        asyncio.create_task(push_status(hub, health, settings.websocket_status_interval)),
        asyncio.create_task(record_memory_every(MEMORY_SAMPLE_SECONDS)),
    ]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        await app.state.http.aclose()
        await close_resources(resources)


def create_app(
    settings: Settings | None = None, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The application; under gunicorn this runs in each worker, after fork."""
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
    include_routers(app)

    @cache
    def route_templates() -> RouteTemplates:
        return RouteTemplates([*app.openapi()["paths"], "/docs", "/redoc", "/openapi.json"])

    def resources() -> Resources:
        current: Resources = app.state.resources
        return current

    # Added innermost first: the last one added runs first.
    app.add_middleware(TimeoutMiddleware, settings=settings, routes=route_templates)
    app.add_middleware(ConcurrencyLimitMiddleware, settings=settings)
    app.add_middleware(RateLimitMiddleware, settings=settings, resources=resources)
    app.add_middleware(RequestContextMiddleware, settings=settings, routes=route_templates)
    provider = setup_tracing(app, settings, span_exporter)
    if provider is not None:
        app.router.on_shutdown.append(provider.shutdown)
    return app
