"""Failure counters in a fixed window (login throttling), in Redis or, without it, in-process."""

import contextlib
import logging
import time

from redis.exceptions import RedisError

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)


class FailureCounter:
    """Counts failures per key; shared by every worker and pod when Redis is configured.

    Redis errors fail open (no throttling) rather than lock everybody out.
    """

    def __init__(self, redis: RedisClient | None, prefix: str, limit: int, window: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limit = limit
        self.window = window
        self._local: dict[str, tuple[int, float]] = {}

    async def blocked_for(self, key: str) -> int:
        """Seconds until the key may try again, or 0 when it is not blocked."""
        count, ttl = await self._read(key)
        return max(ttl, 1) if count >= self.limit else 0

    async def record_failure(self, key: str) -> None:
        if self._redis is None:
            count, expires = self._local.get(key, (0, time.monotonic() + self.window))
            self._local[key] = (count + 1, expires)
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._prefix + key)
                pipe.expire(self._prefix + key, self.window, nx=True)
                await pipe.execute()
        except RedisError as error:
            logger.warning("throttle: redis unavailable, not counting (%s)", error)

    async def reset(self, key: str) -> None:
        if self._redis is None:
            self._local.pop(key, None)
            return
        with contextlib.suppress(RedisError):
            await self._redis.delete(self._prefix + key)

    async def _read(self, key: str) -> tuple[int, int]:
        if self._redis is None:
            count, expires = self._local.get(key, (0, 0.0))
            remaining = expires - time.monotonic()
            if remaining <= 0:
                self._local.pop(key, None)
                return 0, 0
            return count, int(remaining) + 1
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + key)
                pipe.ttl(self._prefix + key)
                raw, ttl = await pipe.execute()
        except RedisError:
            return 0, 0
        return int(raw or 0), int(ttl)
