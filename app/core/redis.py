"""The Redis client: created in the lifespan (after fork); absent when REDIS_URL is not set."""

import logging
import time

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
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
