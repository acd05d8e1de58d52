"""The Redis client: created in the lifespan (after fork); absent when REDIS_URL is not set.

REDIS_URL names one server, a Redis Cluster or a Sentinel-managed master (app/core/redis_url.py).
What runs on Redis works on all three: each Lua script and multi-key command touches the keys of
one hash tag (one cluster slot); pipelines are not transactions (redis-py splits them per node)
except single-key ones; publishing and subscribing go through `publish` and `subscription`, as
redis-py's cluster client has no pub/sub of its own.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any, Self, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, RedisClusterException, RedisError
from redis.retry import Retry
from redis.typing import EncodableT

from app.core.config import Settings
from app.core.redis_url import RedisMode, RedisTarget, parse_redis_url

RedisClient = Redis | RedisCluster
logger = logging.getLogger(__name__)


def create_redis_client(settings: Settings) -> RedisClient | None:
    """Builds the pooled async client, or None: each Redis feature then uses its in-process form."""
    if settings.redis_url is None:
        return None
    target = parse_redis_url(settings.redis_url)
    if target.mode is RedisMode.CLUSTER:
        return _cluster(target)
    if target.mode is RedisMode.SENTINEL:
        return _sentinel_master(target)
    return Redis.from_url(str(settings.redis_url), **_client_options())


def _client_options() -> dict[str, Any]:
    return {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        "decode_responses": False,
    }


class _Cluster(RedisCluster):
    """RedisCluster reporting a cluster it cannot reach as a redis ConnectionError, as the
    one-server client does: redis-py raises RedisClusterException, which is no RedisError, so
    every caller's outage handling (fail open, skip, retry) would miss it."""

    async def initialize(self) -> Self:
        try:
            await super().initialize()
        except RedisClusterException as error:
            raise ConnectionError(str(error)) from error
        return self


def _cluster(target: RedisTarget) -> RedisCluster:
    nodes = [ClusterNode(host, port) for host, port in target.nodes]
    options = {**_client_options(), **target.options}  # the URL's options win, as for one server
    return _Cluster(startup_nodes=nodes, ssl=target.tls, **options)


def _sentinel_master(target: RedisTarget) -> Redis:
    """A client of the master the Sentinels name: redis-py asks them for it on every new
    connection, and an open connection moves once it fails or finds its server a replica."""
    options = {**_client_options(), **target.options}
    if target.tls:
        options["ssl"] = True
    # The Sentinels get the socket and TLS options, not the data nodes' credentials or database.
    reach = {k: v for k, v in options.items() if k.startswith(("socket_", "ssl"))}
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes), sentinel_kwargs=reach, **options
    )
    master: Redis = sentinels.master_for(target.service)
    return master


async def close_redis_client(redis: RedisClient) -> None:
    """Closes the client and, for a Sentinel-managed master, the connections to the Sentinels."""
    await redis.aclose()
    pool = redis.connection_pool if isinstance(redis, Redis) else None
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


def register_script(redis: RedisClient, script: str) -> AsyncScript:
    """A Lua script object for either client: redis-py's AsyncScript runs on RedisCluster too
    (on the node of its keys' slot), though its types name only Redis."""
    return AsyncScript(cast(Redis, redis), script)


async def publish(redis: RedisClient, channel: str, message: str) -> None:
    """PUBLISH on either client. RedisCluster has no publish(); the command itself is sent to
    the node of the channel's slot, so one channel's messages keep their order."""
    await redis.execute_command("PUBLISH", channel, message)


@contextlib.asynccontextmanager
async def subscription(redis: RedisClient) -> AsyncIterator[PubSub]:
    """A pub/sub connection (subscribe confirmations left out). RedisCluster has none, but a
    Redis Cluster hands every published message to every node, so one connection to any node
    hears every channel: a node at random, so processes spread over the nodes and reconnecting
    after a node failed may find another."""
    if isinstance(redis, Redis):
        async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            yield pubsub
        return
    await redis.initialize()
    node = random.choice(redis.get_nodes())
    pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
    async with (
        Redis.from_pool(pool) as client,
        client.pubsub(ignore_subscribe_messages=True) as pubsub,
    ):
        yield pubsub


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

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._queue: list[tuple[tuple[EncodableT, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *command: EncodableT) -> Any:
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

    async def _send(self, batch: list[tuple[tuple[EncodableT, ...], asyncio.Future[Any]]]) -> None:
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
