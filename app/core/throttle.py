"""Password-attempt counters in a fixed window (login and account-change throttling), in Redis
or, without it, in-process.

An attempt is counted before the password is checked, in one atomic step that also says whether
it may go ahead, so concurrent guesses cannot all slip through between a check and a count. A
correct password clears the counter: what stays counted is failures (and attempts in flight).
"""

import logging
import threading
import time

from redis.exceptions import RedisError

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)

# Above this many in-process keys, an attempt first drops the expired ones.
_LOCAL_SWEEP_SIZE = 10_000


class FailureCounter:
    """Counts password attempts per key; shared by every worker and pod when Redis is configured.

    Redis errors fail open: the attempt goes ahead uncounted (with a warning in the log) rather
    than lock every account out while Redis is down.
    """

    def __init__(self, redis: RedisClient | None, prefix: str, limit: int, window: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limit = limit
        self.window = window
        self._local: dict[str, tuple[int, float]] = {}  # key: (attempts, monotonic expiry)
        self._local_lock = threading.Lock()

    async def attempt(self, key: str) -> int:
        """Counts one attempt; returns 0 when it may go ahead, else the seconds until the key's
        window ends (more than `limit` attempts in it)."""
        if self._redis is None:
            count, remaining = self._count_locally(key)
        else:
            try:
                # MULTI/EXEC: one round trip, and no other client's command runs in between.
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incr(self._prefix + key)
                    pipe.expire(self._prefix + key, self.window, nx=True)
                    pipe.ttl(self._prefix + key)
                    count, _, remaining = await pipe.execute()
            except RedisError as error:
                logger.warning("throttle: redis unavailable, not counting (%s)", error)
                return 0
        return max(int(remaining), 1) if int(count) > self.limit else 0

    async def reset(self, key: str) -> None:
        """Clears the key's attempts (after a correct password)."""
        if self._redis is None:
            with self._local_lock:
                self._local.pop(key, None)
            return
        try:
            await self._redis.delete(self._prefix + key)
        except RedisError as error:
            logger.warning("throttle: redis unavailable, not resetting (%s)", error)

    def _count_locally(self, key: str) -> tuple[int, int]:
        # No await inside: the lock guards against threads; the event loop cannot interleave.
        with self._local_lock:
            now = time.monotonic()
            if len(self._local) >= _LOCAL_SWEEP_SIZE:
                self._local = {k: v for k, v in self._local.items() if v[1] > now}
            count, expires = self._local.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + self.window
            self._local[key] = (count + 1, expires)
            return count + 1, int(expires - now) + 1
