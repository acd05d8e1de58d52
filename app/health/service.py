"""Dependency probes: short timeouts, results shared for a moment so load never multiplies pings."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

from redis.exceptions import RedisError

from app.core.resources import Resources
from app.health.schemas import ConnectionPool, HealthReport, Readiness, Scalability
from app.sources.queue import IngestQueue

REDIS_FALLBACK = "in-process fallback (REDIS_URL not set)"


class CachedProbe:
    """Runs a check at most once per ttl and shares its result. Past the ttl, callers get the last
    result at once while one background run refreshes it (stale while revalidating, at most
    ttl + timeout old); only the first callers wait, together, for the first run. Under load no
    request queues behind a probe: a lock here made hundreds of requests pass it one event-loop
    turn at a time, seconds at 1,000 connections."""

    def __init__(self, check: Callable[[], Awaitable[object]], timeout: float, ttl: float) -> None:
        self._check = check
        self._timeout = timeout
        self._ttl = ttl
        self._healthy: bool | None = None
        self._checked_at = -float("inf")
        self._running: asyncio.Task[bool] | None = None

    async def healthy(self) -> bool:
        if time.monotonic() - self._checked_at < self._ttl and self._healthy is not None:
            return self._healthy
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        if self._healthy is None:
            return await asyncio.shield(self._running)
        return self._healthy

    async def _run(self) -> bool:
        try:
            await asyncio.wait_for(self._check(), self._timeout)
            healthy = True
        except Exception:
            healthy = False
        self._healthy, self._checked_at = healthy, time.monotonic()
        return healthy


class HealthService:
    def __init__(
        self, resources: Resources, database_prepared: asyncio.Event, ingest_queue: IngestQueue
    ) -> None:
        settings = resources.settings
        self._resources = resources
        self._database_prepared = database_prepared
        self._ingest_queue = ingest_queue
        timeout, ttl = settings.health_check_timeout_seconds, settings.health_cache_seconds
        self._mongo = CachedProbe(lambda: resources.mongo.admin.command("ping"), timeout, ttl)
        redis = resources.redis
        self._redis = CachedProbe(self._redis_ping, timeout, ttl) if redis is not None else None

    async def _redis_ping(self) -> None:
        assert self._resources.redis is not None
        await cast(Awaitable[bool], self._resources.redis.ping())

    async def report(self) -> HealthReport:
        settings = self._resources.settings
        database = "healthy" if await self._mongo.healthy() else "unhealthy"
        return HealthReport(
            status="running" if database == "healthy" else "degraded",
            database=database,
            connection_pool=ConnectionPool(
                status=database,
                max_pool_size=settings.mongo_max_pool_size,
                min_pool_size=settings.mongo_min_pool_size,
            ),
            scalability=Scalability(
                max_pool_size=settings.mongo_max_pool_size,
                concurrent_tasks_limit=settings.async_concurrency_limit,
                rate_limit_per_minute=settings.rate_limit_per_minute,
            ),
        )

    async def readiness(self) -> Readiness:
        mongo_ok = await self._mongo.healthy()
        prepared = self._database_prepared.is_set()
        checks = {
            "mongodb": "ok" if mongo_ok else "unreachable",
            "indexes": "ok" if prepared else "pending",
        }
        ready = mongo_ok and prepared
        if self._redis is None:
            checks["redis"] = REDIS_FALLBACK
        else:
            redis_ok = await self._redis.healthy()
            checks["redis"] = "ok" if redis_ok else "unreachable"
            ready = ready and redis_ok
        checks["ingestion"] = await self._ingestion()
        return Readiness(status="ready" if ready else "not_ready", checks=checks)

    async def _ingestion(self) -> str:
        """Whether queued sources are being processed. Reported, not required: API pods serve
        without a worker, and a missing worker must not take them out of the load balancer."""
        stale = self._resources.settings.ingest_worker_stale_seconds
        try:
            async with asyncio.timeout(self._resources.settings.health_check_timeout_seconds):
                live = await self._ingest_queue.live_workers(stale)
        except (RedisError, TimeoutError):
            return "unknown (redis unreachable)"
        if live is None:
            return "in-process (no REDIS_URL)"
        return "ok" if live else f"no worker seen for {stale:g} s: sources stay pending"
