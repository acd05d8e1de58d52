"""Prometheus metrics shared by the whole service, correct under gunicorn's multiprocess mode."""

import os

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)

MONGO_POOL_CONNECTIONS = Gauge(
    "botsmith_mongo_pool_connections",
    "Open connections in the MongoDB connection pool.",
    multiprocess_mode="livesum",
)
MONGO_POOL_CHECKED_OUT = Gauge(
    "botsmith_mongo_pool_checked_out_connections",
    "MongoDB connections currently checked out of the pool.",
    multiprocess_mode="livesum",
)
MONGO_POOL_WAITING = Gauge(
    "botsmith_mongo_pool_wait_queue_operations",
    "Operations waiting for a MongoDB connection.",
    multiprocess_mode="livesum",
)
MONGO_POOL_CHECKOUT_WAITS = Counter(
    "botsmith_mongo_pool_checkout_waits",
    "Connection checkouts that had to wait for a free connection.",
)
MONGO_POOL_CHECKOUT_TIMEOUTS = Counter(
    "botsmith_mongo_pool_checkout_timeouts",
    "Connection checkouts that failed because the wait queue timed out.",
)


def render_latest() -> tuple[bytes, str]:
    """Renders every metric; under gunicorn a fresh registry aggregates all workers' files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


async def metrics_endpoint() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)


metrics_router = APIRouter(tags=["observability"])
metrics_router.add_api_route(
    "/metrics",
    metrics_endpoint,
    methods=["GET"],
    summary="Prometheus metrics of every worker",
    response_class=Response,
)
