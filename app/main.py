"""Builds the ASGI application; its container's clients are opened in the lifespan, once per
worker process."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from opentelemetry.sdk.trace.export import SpanExporter
from pymongo.errors import PyMongoError

from app.api import PATH_RULES, document_api, include_routers
from app.chatbots.service import ChatbotService
from app.container import BotSmithApp, Container
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.indexes import ensure_indexes
from app.core.logging import setup_logging
from app.core.metrics import record_memory_every
from app.core.middleware import (
    ConcurrencyLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    TimeoutMiddleware,
)
from app.core.outage import install_database_outage_handler
from app.core.periodic import run_periodically
from app.core.ratelimit import RateLimiter, route_policies
from app.core.resources import Resources, close_resources, open_resources
from app.core.routes import RouteTemplates
from app.core.throttle import FailureCounter
from app.core.tracing import setup_tracing
from app.evaluation.runner import EvaluationRunner
from app.handoff.sweep import unclaimed_handoff_sweep
from app.health.service import REDIS_FALLBACK, HealthService
from app.housekeeping import housekeeping_rounds
from app.realtime.hub import Hub
from app.realtime.status import push_status
from app.retrieval.service import RetrievalIndexes
from app.sources.egress import PinnedEgress
from app.sources.pipeline import IngestionPipeline
from app.sources.queue import IngestQueue
from app.webhooks.delivery import DeliveryLoop

MEMORY_SAMPLE_SECONDS = 10.0
PASSWORD_ATTEMPTS_PREFIX = "botsmith:password-attempts:"

logger = logging.getLogger(__name__)


def open_container(settings: Settings, database_prepared: asyncio.Event) -> Container:
    """The API process's clients and services; call `close_resources` on its resources when
    done. Without Redis, ingestion jobs and evaluation runs run in this process, through the
    same pipeline and runner as the worker's."""
    resources = open_resources(settings)
    pipeline = IngestionPipeline.over(resources)
    retrieval_indexes = RetrievalIndexes()
    evaluations = EvaluationRunner.over(resources, retrieval_indexes)
    ingest_queue = IngestQueue(
        resources.redis,
        settings.ingest_stream,
        pipeline.process_in_process,
        evaluations.run_in_process,
    )
    return Container(
        resources=resources,
        rate_limiter=RateLimiter(
            resources.redis,
            resources.redis_circuit,
            route_policies(settings),
            settings.rate_limit_sync_seconds,
            settings.rate_limit_exact_margin,
        ),
        login_throttle=FailureCounter(
            resources.redis,
            PASSWORD_ATTEMPTS_PREFIX,
            settings.login_max_failures,
            settings.login_failure_window_seconds,
        ),
        retrieval_indexes=retrieval_indexes,
        ingest_queue=ingest_queue,
        hub=Hub(
            settings.websocket_max_connections,
            settings.websocket_max_per_user,
            settings.websocket_send_queue,
        ),
        health=HealthService(resources, database_prepared, ingest_queue),
        webhook_egress=PinnedEgress.configured(settings),
    )


async def prepare_database(resources: Resources, prepared: asyncio.Event) -> None:
    """Creates missing indexes and finishes interrupted deletions, retrying while MongoDB is down;
    readiness waits for it so no request runs before the unique indexes exist."""
    delay = 0.5
    while True:
        try:
            if resources.settings.mongo_ensure_indexes:
                await ensure_indexes(resources.db)
            await ChatbotService.of(resources).resume_purges()
        except PyMongoError as error:
            logger.warning("database not prepared yet, retrying in %.1f s: %s", delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
        else:
            prepared.set()
            return


@asynccontextmanager
async def lifespan(app: BotSmithApp) -> AsyncIterator[None]:
    prepared = asyncio.Event()
    container = app.container = open_container(app.settings, prepared)
    settings, resources = container.settings, container.resources
    if resources.redis is None:
        logger.warning("redis: %s; limits, cache and fan-out stay in-process", REDIS_FALLBACK)
    hub = container.hub
    resources.events.listen(hub.on_event)
    resources.events.start()
    app.before_shutdown.append(hub.close_all)
    background = [
        asyncio.create_task(prepare_database(resources, prepared)),
        asyncio.create_task(resources.reads.watch(settings.read_policy_reload_seconds)),
        asyncio.create_task(push_status(hub, container.health, settings.websocket_status_interval)),
        asyncio.create_task(record_memory_every(MEMORY_SAMPLE_SECONDS)),
        asyncio.create_task(
            run_periodically(resources.redis, unclaimed_handoff_sweep(resources), settings.db_name)
        ),
    ]
    if resources.redis is None:  # else `botsmith worker` sends the webhooks and keeps house
        loop = DeliveryLoop(resources, container.webhook_egress)
        background.append(asyncio.create_task(loop.run()))
        background += [
            asyncio.create_task(run_periodically(None, periodic, settings.db_name))
            for periodic in housekeeping_rounds(resources)
        ]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        await container.rate_limiter.close()  # what it admitted locally, added to Redis
        await close_resources(resources)


def create_app(
    settings: Settings | None = None, span_exporter: SpanExporter | None = None
) -> BotSmithApp:
    """The application; under gunicorn this runs in each worker, after fork."""
    settings = settings or get_settings()
    setup_logging(settings)
    app = BotSmithApp(
        settings,
        title="BotSmith AI",
        version="0.1.0",
        summary="Self-hostable backend for AI chatbot builders",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_database_outage_handler(app)
    include_routers(app, metrics=not settings.metrics_port)
    document_api(app)

    @cache
    def route_templates() -> RouteTemplates:
        return RouteTemplates([*app.openapi()["paths"], "/docs", "/redoc", "/openapi.json"])

    # Added innermost first: the last one added runs first.
    app.add_middleware(
        TimeoutMiddleware, settings=settings, paths=PATH_RULES, routes=route_templates
    )
    app.add_middleware(ConcurrencyLimitMiddleware, settings=settings, paths=PATH_RULES)
    app.add_middleware(
        RateLimitMiddleware,
        settings=settings,
        paths=PATH_RULES,
        limiter=lambda: app.container.rate_limiter,
        verified_keys=lambda: app.container.resources.verified_keys,
    )
    app.add_middleware(BodyLimitMiddleware, settings=settings, openapi=app.openapi)
    app.add_middleware(RequestContextMiddleware, settings=settings, routes=route_templates)
    docs = frozenset(
        p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
    )
    app.add_middleware(SecurityHeadersMiddleware, settings=settings, docs_paths=docs)
    provider = setup_tracing(app, settings, span_exporter)
    if provider is not None:
        app.router.on_shutdown.append(provider.shutdown)
    return app
