"""The read cache: stampede protection and invalidation against real Redis, and across two API
processes sharing one Redis (as two pods do)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from app.core.cache import Cache
from app.core.db import Document
from app.core.redis import RedisCircuit
from redis.asyncio import Redis

from tests.conftest import Services, StartApi
from tests.support.api import create_chatbot, sign_up
from tests.support.metrics import scrape, value
from tests.support.processes import free_port


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.redis_url)
    yield client
    await client.aclose()


def _cache(redis: Redis | None, enabled: bool = True) -> Cache:
    return Cache(redis, RedisCircuit(0.5), enabled=enabled, ttl=60)


class CountingLoader:
    """A slow loader that counts how often the database would have been asked."""

    def __init__(self, document: Document, delay: float = 0.2) -> None:
        self.calls = 0
        self.document = document
        self.delay = delay

    async def __call__(self) -> Document | None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return dict(self.document)


@pytest.mark.anyio
async def test_concurrent_misses_in_one_process_load_once(redis: Redis) -> None:
    cache, key = _cache(redis), uuid.uuid4().hex
    loader = CountingLoader({"id": key, "name": "bot"})
    results = await asyncio.gather(*(cache.get_or_load("t", key, loader) for _ in range(50)))
    assert loader.calls == 1
    assert all(result == {"id": key, "name": "bot"} for result in results)
    assert await cache.get_or_load("t", key, loader) == {"id": key, "name": "bot"}
    assert loader.calls == 1


@pytest.mark.anyio
async def test_concurrent_misses_in_two_processes_load_once(redis: Redis) -> None:
    first, second, key = _cache(redis), _cache(redis), uuid.uuid4().hex
    loader = CountingLoader({"id": key})
    results = await asyncio.gather(
        *(cache.get_or_load("t", key, loader) for cache in (first, second) for _ in range(10))
    )
    assert loader.calls == 1
    assert all(result == {"id": key} for result in results)


@pytest.mark.anyio
async def test_a_load_racing_an_invalidation_does_not_store_the_old_document(
    redis: Redis,
) -> None:
    cache, key = _cache(redis), uuid.uuid4().hex
    release = asyncio.Event()

    async def slow_old_read() -> Document | None:
        await release.wait()
        return {"id": key, "name": "old"}

    pending = asyncio.create_task(cache.get_or_load("t", key, slow_old_read))
    await asyncio.sleep(0.05)
    await cache.invalidate("t", key)  # the write happened while the old read was in flight
    release.set()
    assert await pending == {"id": key, "name": "old"}

    fresh = CountingLoader({"id": key, "name": "new"}, delay=0)
    assert await cache.get_or_load("t", key, fresh) == {"id": key, "name": "new"}
    assert fresh.calls == 1


@pytest.mark.anyio
async def test_datetimes_come_back_timezone_aware(redis: Redis) -> None:
    cache, key = _cache(redis), uuid.uuid4().hex
    created = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    loader = CountingLoader({"created_at": created}, delay=0)
    await cache.get_or_load("t", key, loader)
    cached = await cache.get_or_load("t", key, loader)
    assert loader.calls == 1
    assert cached == {"created_at": created}


@pytest.mark.anyio
async def test_disabled_means_every_read_loads_and_nothing_is_stored(redis: Redis) -> None:
    cache, key = _cache(redis, enabled=False), uuid.uuid4().hex
    loader = CountingLoader({"id": key}, delay=0)
    for _ in range(3):
        await cache.get_or_load("t", key, loader)
    assert loader.calls == 3
    assert await redis.keys(f"botsmith:cache:v2:t:{key}*") == []


@pytest.mark.anyio
async def test_an_unreachable_redis_is_bypassed_not_fatal() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    cache, key = _cache(dead), uuid.uuid4().hex
    loader = CountingLoader({"id": key}, delay=0)
    assert await cache.get_or_load("t", key, loader) == {"id": key}
    assert await cache.get_or_load("t", key, loader) == {"id": key}
    assert loader.calls == 2
    await dead.aclose()


@pytest.mark.anyio
async def test_without_redis_the_in_process_store_caches_and_invalidates() -> None:
    cache, key = _cache(None), uuid.uuid4().hex
    loader = CountingLoader({"id": key}, delay=0)
    await cache.get_or_load("t", key, loader)
    await cache.get_or_load("t", key, loader)
    assert loader.calls == 1
    await cache.invalidate("t", key)
    await cache.get_or_load("t", key, loader)
    assert loader.calls == 2


def test_an_update_through_one_pod_is_seen_at_once_through_another(start_api: StartApi) -> None:
    pod_a, pod_b = start_api(), start_api()
    with pod_a.client() as a, pod_b.client() as b:
        owner = sign_up(a)
        chatbot = create_chatbot(a, owner, name="before")
        url = f"/api/chatbots/{chatbot['id']}"
        assert b.get(url, headers=owner.headers).json()["name"] == "before"
        assert b.get(url, headers=owner.headers).json()["name"] == "before"
        hits = value(scrape(b), "botsmith_cache_requests_total", namespace="chatbot", result="hit")
        assert hits >= 1

        assert a.patch(url, json={"name": "after"}, headers=owner.headers).status_code == 200
        assert b.get(url, headers=owner.headers).json()["name"] == "after"


def test_with_the_cache_off_nothing_is_cached(start_api: StartApi) -> None:
    api = start_api({"CACHE_ENABLED": "false"})
    with api.client() as client:
        owner = sign_up(client)
        chatbot = create_chatbot(client, owner)
        for _ in range(3):
            assert (
                client.get(f"/api/chatbots/{chatbot['id']}", headers=owner.headers).status_code
                == 200
            )
        samples = scrape(client)
    assert value(samples, "botsmith_cache_requests_total") == 0
