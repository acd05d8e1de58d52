"""Prometheus metrics of the shared core (HTTP, MongoDB, Redis, cache, limits, memory), correct
under gunicorn's multiprocess mode; domains declare their own metrics beside their code."""

import asyncio
import functools
import os
from collections.abc import Callable
from typing import cast

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)


def labelled[M: Counter | Histogram](metric: M, max_label_sets: int = 4096) -> Callable[..., M]:
    """`metric.labels`, remembered per label values: each lookup takes a lock and validates the
    labels, about as long as the update itself, on every request."""
    return cast(Callable[..., M], functools.lru_cache(maxsize=max_label_sets)(metric.labels))


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "botsmith_http_requests",
    "HTTP requests by method, route template and status class.",
    ["method", "route", "status_class"],
)
HTTP_REQUEST_DURATION = Histogram(
    "botsmith_http_request_duration_seconds",
    "HTTP request duration by method, route template and status class.",
    ["method", "route", "status_class"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "botsmith_http_requests_in_flight",
    "HTTP requests being served.",
    multiprocess_mode="livesum",
)
HTTP_TIMEOUTS = Counter(
    "botsmith_http_request_timeouts",
    "Requests cancelled by REQUEST_TIMEOUT.",
    ["route"],
)
CONCURRENCY_WAITING = Gauge(
    "botsmith_concurrency_queue_waiting",
    "Requests waiting for a slot under ASYNC_CONCURRENCY_LIMIT.",
    multiprocess_mode="livesum",
)
CONCURRENCY_REJECTIONS = Counter(
    "botsmith_concurrency_rejections",
    "Requests refused with 503 because the concurrency queue was full or too slow.",
)
RATE_LIMIT_DECISIONS = Counter(
    "botsmith_rate_limit_decisions",
    "Rate-limit decisions by route class.",
    ["route_class", "decision"],
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "botsmith_rate_limit_fail_open",
    "Requests let through unchecked because Redis was unavailable.",
)
CACHE_REQUESTS = Counter(
    "botsmith_cache_requests",
    "Cache look-ups by namespace and result (hit, miss, bypass when Redis is unavailable).",
    ["namespace", "result"],
)
READ_PREFERENCE = Gauge(
    "botsmith_read_preference",
    "1 for the read preference mode each workload uses now (from the read policy file).",
    ["workload", "mode"],
    multiprocess_mode="livemax",
)
MONGO_COMMAND_DURATION = Histogram(
    "botsmith_mongo_command_duration_seconds",
    "MongoDB command duration by command name and outcome.",
    ["command", "outcome"],
    buckets=LATENCY_BUCKETS,
)

MONGO_POOL_CONNECTIONS = Gauge(
    "botsmith_mongo_pool_connections",
    "Open connections in the MongoDB connection pool.",
    multiprocess_mode="livesum",
)
MONGO_POOL_MAX = Gauge(
    "botsmith_mongo_pool_max_connections",
    "MONGO_MAX_POOL_SIZE of each live process: the denominator of pool utilisation.",
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
DATABASE_UNAVAILABLE = Counter(
    "botsmith_database_unavailable",
    "Requests answered 503 because MongoDB could not be reached.",
)
MONGO_POOL_CHECKOUT_WAITS = Counter(
    "botsmith_mongo_pool_checkout_waits",
    "Connection checkouts that had to wait for a free connection.",
)
MONGO_POOL_CHECKOUT_TIMEOUTS = Counter(
    "botsmith_mongo_pool_checkout_timeouts",
    "Connection checkouts that failed because the wait queue timed out.",
)
PROCESS_MEMORY = Gauge(
    "botsmith_process_resident_memory_bytes",
    "Resident memory of the process; under gunicorn, summed over the live workers.",
    multiprocess_mode="livesum",
)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def record_memory() -> None:
    """Sets PROCESS_MEMORY from /proc (Linux); elsewhere it stays unset."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except OSError:
        return
    PROCESS_MEMORY.set(resident_pages * _PAGE_SIZE)


async def record_memory_every(seconds: float) -> None:
    while True:
        record_memory()
        await asyncio.sleep(seconds)


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
