"""Redis beyond one server: the service on a three-master Redis Cluster (two API processes and
an ingestion worker, as two pods and a worker pod would be) and on a master that a Sentinel
names. What would break on a cluster is asserted: the rate-limit and quota scripts (their keys
in one slot each), the ingestion stream, events published on one process and heard on another,
housekeeping leases, erasure's scan over every node, and an unreachable cluster taken for an
outage rather than a crash."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.cluster
from app.core.config import Settings
from app.core.events import EventBus
from app.core.periodic import Periodic, run_round
from app.core.ratelimit import RateLimiter, route_policies
from app.core.redis import RedisCircuit, close_redis_client, create_redis_client, publish
from redis.asyncio.cluster import RedisCluster
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Services
from tests.support.api import Account, add_text, assert_problem, create_chatbot, sign_up
from tests.support.processes import (
    TEST_JWT_SECRET,
    ApiServer,
    free_port,
    poll_until,
    two_apis_and_a_worker,
)
from tests.support.redis_topologies import RedisClusterSet, SentinelSet

ORIGIN = "https://shop.example"
PUBLIC_PER_HOUR = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    with RedisClusterSet(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


def _env(services: Services, redis_url: str) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_PUBLIC_PER_HOUR": str(PUBLIC_PER_HOUR),
        "ERASURE_CHECK_SECONDS": "0.5",
    }


@pytest.fixture(scope="module")
def apis(
    services: Services, cluster: RedisClusterSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, ApiServer]]:
    folders = tmp_path_factory.mktemp("api"), tmp_path_factory.mktemp("api")
    with two_apis_and_a_worker(_env(services, cluster.url), *folders) as pair:
        yield pair


@pytest.fixture
def clients(apis: tuple[ApiServer, ApiServer]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with apis[0].client() as first, apis[1].client() as second:
        yield first, second


def _settings(redis_url: str) -> Settings:
    return Settings(jwt_secret=TEST_JWT_SECRET, redis_url=redis_url)


def _ws_url(api: ApiServer, owner: Account) -> str:
    return f"ws://127.0.0.1:{api.port}/api/ws?token={owner.access_token}"


def _receive_until(ws: ClientConnection, accept: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if accept(message):
            return message


def _subscribe_to_notifications(ws: ClientConnection) -> None:
    _receive_until(ws, lambda m: "worker" in m)  # the greeting
    ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
    _receive_until(ws, lambda m: m == {"type": "subscribed", "topic": "notifications"})


def _ask(client: httpx.Client, owner: Account, bot: str) -> httpx.Response:
    return client.post(
        f"/api/chatbots/{bot}/chat", json={"message": "When do you open?"}, headers=owner.headers
    )


def _ingested_and_announced(
    apis: tuple[ApiServer, ApiServer], clients: tuple[httpx.Client, httpx.Client]
) -> None:
    """A source added on the first process is ingested by the worker; its progress, published
    by the worker, and a new conversation, published by the first process, reach the owner's
    socket on the last process."""
    first = clients[0]
    owner = sign_up(first)
    bot = create_chatbot(first, owner)["id"]
    with connect(_ws_url(apis[-1], owner)) as ws:
        _subscribe_to_notifications(ws)
        assert _ask(first, owner, bot).status_code == 200
        started = _receive_until(ws, lambda m: m["type"] == "event")
        assert started["data"]["type"] == "conversation.started"
        assert started["data"]["chatbot_id"] == bot

        source = add_text(first, owner, bot, "Hours", "We open daily from nine to five.")
        assert source["status"] == "ready", source
        ready = _receive_until(
            ws, lambda m: m["type"] == "event" and m["data"].get("status") == "ready"
        )
        assert ready["data"]["source_id"] == source["id"]


def _readiness_once_a_worker_is_seen(client: httpx.Client) -> dict[str, str]:
    def checks() -> dict[str, str]:
        found: dict[str, str] = client.get("/readyz").json()["checks"]
        return found

    return poll_until(checks, lambda found: found["ingestion"] == "ok", 30)


def test_both_processes_are_ready_and_see_the_worker_through_the_cluster(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    for client in clients:
        assert _readiness_once_a_worker_is_seen(client)["redis"] == "ok"


def test_a_source_is_ingested_through_the_stream_and_events_cross_processes(
    apis: tuple[ApiServer, ApiServer], clients: tuple[httpx.Client, httpx.Client]
) -> None:
    _ingested_and_announced(apis, clients)


def test_the_public_rate_limit_refuses_at_the_limit_whichever_process_counts(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    first, _ = clients
    owner = sign_up(first)
    bot = create_chatbot(first, owner, visibility="public", allowed_origins=[ORIGIN])["id"]
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    headers = {"Origin": ORIGIN, "X-Forwarded-For": address}
    # The windows are calendar hours: the burst stays inside one.
    if time.time() % 3600 > 3540:
        time.sleep(3600.5 - time.time() % 3600)
    statuses = [
        clients[i % 2].get(f"/api/public/chatbots/{bot}", headers=headers).status_code
        for i in range(PUBLIC_PER_HOUR)
    ]
    assert statuses == [200] * PUBLIC_PER_HOUR
    for client in clients:
        refused = client.get(f"/api/public/chatbots/{bot}", headers=headers)
        assert_problem(refused, 429)
        assert int(refused.headers["Retry-After"]) >= 1


def test_a_bots_daily_quota_counts_the_messages_of_both_processes(
    clients: tuple[httpx.Client, httpx.Client],
) -> None:
    first, second = clients
    owner = sign_up(first)
    bot = create_chatbot(first, owner, quotas={"messages_per_day": 3})["id"]
    for client in (first, second, first):
        assert _ask(client, owner, bot).status_code == 200
    for client in (second, first):
        problem = assert_problem(_ask(client, owner, bot), 429)
        assert problem["quota"] == "chatbot_messages_per_day"
    usage = second.get("/api/usage", headers=owner.headers).json()
    (entry,) = (entry for entry in usage["chatbots"] if entry["chatbot_id"] == bot)
    used = {quota["quota"]: quota["used"] for quota in entry["quotas"]}
    assert used["chatbot_messages_per_day"] == 3


def test_an_erased_account_leaves_no_key_on_any_node(
    apis: tuple[ApiServer, ApiServer],
    clients: tuple[httpx.Client, httpx.Client],
    cluster: RedisClusterSet,
) -> None:
    first, _ = clients
    owner = sign_up(first)
    bot = create_chatbot(first, owner)["id"]
    assert _ask(first, owner, bot).status_code == 200
    node = cluster.nodes[0]
    with redis.cluster.RedisCluster(host="127.0.0.1", port=node.port) as store:
        # Quota, token and rate-limit counters under different hash tags, so on several nodes.
        assert list(store.scan_iter(match=f"*{owner.id}*", count=1000))
        response = first.request(
            "DELETE", "/api/users/me", json={"password": owner.password}, headers=owner.headers
        )
        assert response.status_code == 202, response.text
        poll_until(
            lambda: first.get(f"/api/erasures/{response.json()['id']}").json()["status"],
            "done".__eq__,
            60,
        )
        assert list(store.scan_iter(match=f"*{owner.id}*", count=1000)) == []


@pytest.mark.anyio
async def test_an_event_on_a_channel_of_any_node_reaches_a_subscriber_on_one_node(
    cluster: RedisClusterSet,
) -> None:
    publisher, subscriber = (create_redis_client(_settings(cluster.url)) for _ in range(2))
    assert isinstance(publisher, RedisCluster)
    assert subscriber is not None
    await publisher.initialize()
    channels: dict[int, str] = {}  # a channel whose slot each node serves
    for n in range(1000):
        channel = f"botsmith:events:user:probe-{uuid.uuid4().hex[:6]}-{n}"
        node = publisher.get_node_from_key(channel)
        assert node is not None
        channels.setdefault(int(node.port), channel)
    assert len(channels) == len(cluster.nodes)
    heard: list[str] = []

    async def listener(channel: str, event: dict[str, object]) -> None:
        heard.append(channel)

    bus = EventBus(subscriber)
    bus.listen(listener)
    bus.start()
    try:
        deadline = time.monotonic() + 30
        # Published until heard: the subscription starts in the background.
        while set(heard) != set(channels.values()) and time.monotonic() < deadline:
            for channel in channels.values():
                await publish(publisher, channel, json.dumps({"type": "probe"}))
            await asyncio.sleep(0.2)
        assert set(heard) == set(channels.values())
    finally:
        await bus.stop()
        await close_redis_client(publisher)
        await close_redis_client(subscriber)


@pytest.mark.anyio
async def test_of_several_processes_on_the_cluster_one_holds_a_rounds_lease(
    cluster: RedisClusterSet,
) -> None:
    started, gate, runs = asyncio.Event(), asyncio.Event(), []

    async def job() -> int:
        runs.append(1)
        started.set()
        await gate.wait()
        return 1

    periodic = Periodic(name=f"test-{uuid.uuid4().hex}", interval=60.0, job=job)
    processes = [create_redis_client(_settings(cluster.url)) for _ in range(4)]
    try:
        rounds = [asyncio.create_task(run_round(client, periodic)) for client in processes]
        await asyncio.wait_for(started.wait(), 30)  # one round runs; the others are refused
        gate.set()
        results = await asyncio.gather(*rounds)
        assert sorted(results, key=str) == [1, None, None, None]
        assert runs == [1]
    finally:
        for client in processes:
            assert client is not None
            await close_redis_client(client)


@pytest.mark.anyio
async def test_an_unreachable_cluster_is_an_outage_the_rate_limiter_fails_open_on() -> None:
    settings = _settings(f"redis+cluster://127.0.0.1:{free_port()}")
    client = create_redis_client(settings)
    assert client is not None
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.get("anything")
        limiter = RateLimiter(client, RedisCircuit(60.0), route_policies(settings))
        assert (await limiter.hit("ip:192.0.2.1", "default")).allowed
    finally:
        await close_redis_client(client)


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with SentinelSet(tmp_path_factory.mktemp("sentinel")) as watched:
        yield watched


@pytest.fixture(scope="module")
def sentinel_apis(
    services: Services, sentinels: SentinelSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, ApiServer]]:
    folders = tmp_path_factory.mktemp("api"), tmp_path_factory.mktemp("api")
    with two_apis_and_a_worker(_env(services, sentinels.url), *folders) as pair:
        yield pair


def test_through_a_sentinel_sources_are_ingested_and_events_cross_processes(
    sentinel_apis: tuple[ApiServer, ApiServer], sentinels: SentinelSet
) -> None:
    with sentinel_apis[0].client() as first, sentinel_apis[1].client() as second:
        _ingested_and_announced(sentinel_apis, (first, second))
    with redis.Redis(port=sentinels.master_port()) as master:
        assert master.exists(sentinel_apis[0].env["INGEST_STREAM"])


@pytest.mark.anyio
async def test_after_a_failover_the_client_writes_to_the_master_the_sentinel_names(
    sentinels: SentinelSet,
) -> None:
    client = create_redis_client(_settings(sentinels.url))
    assert client is not None
    key = f"test:failover:{uuid.uuid4().hex}"
    try:
        await client.set(key, "before")
        promoted = await asyncio.to_thread(sentinels.failover)
        with redis.Redis(port=promoted) as master:
            deadline = time.monotonic() + 60
            # The old master takes writes until the Sentinel turns it into a replica (seconds
            # later); from then on the client's writes reach the promoted one.
            while time.monotonic() < deadline:
                written = uuid.uuid4().hex
                with contextlib.suppress(redis.exceptions.RedisError):
                    await client.set(key, written)
                if master.get(key) == written.encode():
                    break
                await asyncio.sleep(0.5)
            assert master.get(key) == written.encode()
    finally:
        await close_redis_client(client)
