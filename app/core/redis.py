"""The Redis client: created in the lifespan (after fork); absent when REDIS_URL is not set."""

import asyncio
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.core.config import Settings

RedisClient = Redis
logger = logging.getLogger(__name__)


def create_redis_client(settings: Settings) -> RedisClient | None:
    """Builds the pooled async client, or None: each Redis feature then uses its in-process form."""
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        str(settings.redis_url),
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        decode_responses=False,
    )


class RedisCircuit:
    """Skips Redis for a moment after it failed, so an outage costs one slow call per interval
    rather than one per request; the first failure of each outage is logged."""

    def __init__(self, retry_after: float, log_interval: float = 60.0) -> None:
        self._retry_after = retry_after
        self._log_interval = log_interval
        self._open_until = 0.0
        self._last_logged = -float("inf")

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def record_failure(self, what: str, error: Exception) -> None:
        now = time.monotonic()
        self._open_until = now + self._retry_after
        if now - self._last_logged >= self._log_interval:
            self._last_logged = now
            logger.warning("redis unavailable for %s, carrying on without it: %s", what, error)

    def record_success(self) -> None:
        self._open_until = 0.0


class RedisBatcher:
    """Sends the commands issued during one event-loop turn together, in one pipeline.

    Under load many requests need Redis at once; redis-py's per-call cost is then paid once per
    batch instead of once per request. A lone command waits only until the loop's current turn
    ends. A failed batch fails each of its commands with the same error.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queue: list[tuple[tuple[object, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *command: object) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((command, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[object, ...], asyncio.Future[Any]]]) -> None:
        results: list[Any]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command)
                results = await pipe.execute(raise_on_error=False)
        except RedisError as error:
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
