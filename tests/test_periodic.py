"""Housekeeping rounds against real Redis: of several processes, one runs each round; a long
round keeps its lease; the next round waits one interval."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from app.core.periodic import KEY_PREFIX, Lease, Periodic, run_round
from redis.asyncio import Redis

from tests.conftest import Services

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.redis_url)
    yield client
    await client.aclose()


def _counting(name: str, interval: float, gate: asyncio.Event) -> tuple[Periodic, list[int]]:
    runs: list[int] = []

    async def job() -> int:
        runs.append(1)
        await gate.wait()
        return 1

    return Periodic(name=name, interval=interval, job=job), runs


async def test_of_many_processes_one_runs_a_round_and_the_next_waits_an_interval(
    redis: Redis, services: Services
) -> None:
    gate = asyncio.Event()
    periodic, runs = _counting(f"test-{uuid.uuid4().hex}", 60.0, gate)
    # Separate clients stand for separate processes.
    clients = [Redis.from_url(services.redis_url) for _ in range(4)]
    try:
        rounds = [asyncio.create_task(run_round(client, periodic)) for client in clients]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*rounds)
        assert sorted(results, key=str) == [1, None, None, None]
        assert runs == [1]
        # The finished round keeps the lease for (most of) an interval: no round runs now.
        assert await run_round(redis, periodic) is None
        ttl = await redis.pttl(f"{KEY_PREFIX}:{periodic.name}")  # no scope given
        assert 50_000 < ttl <= 54_000
    finally:
        for client in clients:
            await client.aclose()


async def test_a_round_longer_than_its_lease_keeps_it(redis: Redis) -> None:
    name = f"test-{uuid.uuid4().hex}"
    lease, other = Lease(redis, name), Lease(redis, name)
    assert await lease.take(3.0)
    async with lease.held(3.0):  # renewed every second
        await asyncio.sleep(2.5)
        # Without renewal half a second would be left; renewed, about two and a half.
        assert await redis.pttl(KEY_PREFIX + name) > 1000
        assert not await other.take(3.0)
        assert not await other.keep(10.0)  # renewing another process's lease does nothing
    assert await redis.pttl(KEY_PREFIX + name) <= 3000
