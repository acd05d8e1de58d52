"""Housekeeping rounds that one process at a time runs, however many replicas there are.

A round starts every `interval` seconds in each process, but only the process that takes the
round's lease in Redis (SET NX with a random token) runs it. A lease is named after the round
and the deployment's database (`scope`), so deployments sharing one Redis do not hold each
other's rounds. The lease is renewed while the round
runs, so a long round stays one process's; when the round ends its lease is kept for `interval`,
so the next round, wherever it runs, starts about one interval later. A process that dies
mid-round leaves the lease to expire (at most LEASE_SECONDS) and another process takes over.

Without Redis there is one process (the API ingests in-process), which runs every round. With
Redis unreachable a round is skipped unless the job is safe to run twice (`redis_optional`).
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)
LEASE_SECONDS = 30.0  # how long a round's lease lasts between renewals
KEY_PREFIX = "botsmith:lease:"

# Keeps or drops the lease only while it is still this process's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Periodic:
    """A named round: `job` returns how many things it did (logged when not zero)."""

    name: str
    interval: float
    job: Callable[[], Awaitable[int]]
    redis_optional: bool = False  # the job is idempotent even when two processes run it


class Lease:
    """One named lease in Redis (or, without Redis, always this process's)."""

    def __init__(self, redis: RedisClient | None, name: str) -> None:
        self._redis = redis
        self._key = KEY_PREFIX + name
        self._token = secrets.token_hex(16)

    async def take(self, seconds: float) -> bool:
        if self._redis is None:
            return True
        taken = await self._redis.set(self._key, self._token, nx=True, px=_ms(seconds))
        return bool(taken)

    async def keep(self, seconds: float) -> bool:
        """Extends the lease to `seconds` from now if it is still ours."""
        if self._redis is None:
            return True
        renewal = self._redis.eval(_RENEW, 1, self._key, self._token, _ms(seconds))
        return bool(await cast(Awaitable[int], renewal))  # redis-py types sync and async as one

    @contextlib.asynccontextmanager
    async def held(self, seconds: float = LEASE_SECONDS) -> AsyncIterator[None]:
        """Renews the (taken) lease every third of `seconds` until the block ends."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(seconds / 3)
                with contextlib.suppress(RedisError):
                    await self.keep(seconds)

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer


async def run_round(redis: RedisClient | None, periodic: Periodic, scope: str = "") -> int | None:
    """Runs one round if this process takes its lease; None when another process has it."""
    lease = Lease(redis, f"{scope}:{periodic.name}")
    try:
        taken = await lease.take(max(LEASE_SECONDS, periodic.interval))
    except RedisError as error:
        if not periodic.redis_optional:
            logger.warning("%s skipped: redis unavailable (%s)", periodic.name, error)
            return None
        lease, taken = Lease(None, periodic.name), True
    if not taken:
        return None
    async with lease.held():
        done = await periodic.job()
    with contextlib.suppress(RedisError):  # the next round is due one interval from now
        await lease.keep(periodic.interval * 0.9)
    return done


async def run_periodically(
    redis: RedisClient | None,
    periodic: Periodic,
    scope: str,
    stopping: asyncio.Event | None = None,
) -> None:
    """Runs `periodic` every interval until cancelled or `stopping` is set; a failed round is
    logged and the next one runs as usual."""
    stopping = stopping or asyncio.Event()
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), periodic.interval)
        if stopping.is_set():
            return
        try:
            done = await run_round(redis, periodic, scope)
        except PyMongoError as error:
            logger.warning("%s failed, it runs again: %s", periodic.name, error)
        except Exception:
            logger.exception("%s failed; it runs again", periodic.name)
        else:
            if done:
                logger.info("%s: %d done", periodic.name, done)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
