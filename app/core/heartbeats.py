"""Which processes of one kind are alive, across pods: each beats into a Redis sorted set (member
→ time of its last beat), and a reader counts the beats younger than a bound."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)
FORGET_AFTER_SECONDS = 86_400  # members that stopped beating a day ago are dropped


class Heartbeats:
    def __init__(self, redis: RedisClient, key: str) -> None:
        self._redis = redis
        self._key = key

    async def beat(self, member: str) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key, {member: now})
            pipe.zremrangebyscore(self._key, "-inf", now - FORGET_AFTER_SECONDS)
            await pipe.execute()

    async def leave(self, member: str) -> None:
        await self._redis.zrem(self._key, member)

    async def live(self, stale_after: float) -> int:
        """Members that beat within the last `stale_after` seconds."""
        return int(await self._redis.zcount(self._key, time.time() - stale_after, "+inf"))

    @contextlib.asynccontextmanager
    async def beating(self, member: str, interval: float) -> AsyncIterator[None]:
        """Beats every `interval` inside the block (a Redis outage skips beats), and leaves on
        the way out, so readers see the member gone at once."""

        async def beat_forever() -> None:
            while True:
                try:
                    await self.beat(member)
                except RedisError as error:
                    logger.warning("heartbeat not recorded: %s", error)
                await asyncio.sleep(interval)

        task = asyncio.create_task(beat_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(RedisError):
                await self.leave(member)
