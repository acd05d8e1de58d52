"""A read-through cache for hot documents, shared by every worker and pod through Redis.

- Stampedes: one load per key per process (single flight), one per key across pods (a short
  Redis lock; others wait briefly for its result), and expiry jittered by 10 %.
- Invalidation: a short-lived tombstone replaces the entry, and entries are only ever written
  when absent, so a load that raced with the write cannot put the old document back.
- Redis trouble: the cache steps aside (the loader answers) and tries again shortly after.
Without Redis the same rules apply to a bounded in-process store; CACHE_ENABLED=false disables
it altogether.
"""

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import bson
import bson.errors
from bson.codec_options import CodecOptions
from redis.exceptions import RedisError

from app.core.db import Document
from app.core.metrics import CACHE_REQUESTS, labelled
from app.core.redis import RedisBatcher, RedisCircuit, RedisClient

_BSON: CodecOptions[Document] = CodecOptions(tz_aware=True)  # C-accelerated; keeps datetimes
# The format version is in the key, so a release that changes the encoding never reads old values.
_PREFIX = "botsmith:cache:v2:"
_TOMBSTONE = b"\x00"
TOMBSTONE_SECONDS = 10
LOCK_SECONDS = 3
_WAIT_FOR_PEER_SECONDS = 0.5
_LOCAL_CAPACITY = 10_000
_LOOKUPS = labelled(CACHE_REQUESTS)

Loader = Callable[[], Awaitable[Document | None]]


class Cache:
    def __init__(
        self, redis: RedisClient | None, circuit: RedisCircuit, *, enabled: bool, ttl: int
    ) -> None:
        self._redis = redis
        self._batcher = RedisBatcher(redis) if redis is not None else None
        self._circuit = circuit
        self.enabled = enabled
        self._ttl = ttl
        self._loading: dict[str, asyncio.Future[Document | None]] = {}
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_or_load(self, namespace: str, key: str, loader: Loader) -> Document | None:
        if not self.enabled:
            return await loader()
        full_key = f"{_PREFIX}{namespace}:{key}"
        if self._redis is not None and self._circuit.is_open:
            _LOOKUPS(namespace, "bypass").inc()
            return await loader()
        try:
            raw = await self._get(full_key)
        except RedisError as error:
            self._circuit.record_failure("caching", error)
            _LOOKUPS(namespace, "bypass").inc()
            return await loader()
        if raw is not None and raw != _TOMBSTONE:
            document = _decode(raw)
            if document is not None:
                _LOOKUPS(namespace, "hit").inc()
                return document
            await self._discard(full_key)
            raw = None
        _LOOKUPS(namespace, "miss").inc()
        if raw == _TOMBSTONE:
            return await loader()  # just invalidated: read through, store nothing yet
        return await self._single_flight(full_key, loader)

    async def invalidate(self, namespace: str, *keys: str) -> None:
        if not self.enabled:
            return
        for key in keys:
            full_key = f"{_PREFIX}{namespace}:{key}"
            if self._redis is None:
                self._store_local(full_key, _TOMBSTONE, TOMBSTONE_SECONDS, overwrite=True)
                continue
            try:
                await self._redis.set(full_key, _TOMBSTONE, ex=TOMBSTONE_SECONDS)
            except RedisError as error:
                # The entry may outlive its document by up to CACHE_TTL; say so loudly.
                self._circuit.record_failure("cache invalidation", error)

    async def _single_flight(self, full_key: str, loader: Loader) -> Document | None:
        pending = self._loading.get(full_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Document | None] = asyncio.get_running_loop().create_future()
        self._loading[full_key] = future
        try:
            value = await self._load_once_across_pods(full_key, loader)
            future.set_result(value)
            return value
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here so an unawaited future does not warn
            raise
        finally:
            del self._loading[full_key]

    async def _load_once_across_pods(self, full_key: str, loader: Loader) -> Document | None:
        if self._redis is not None and not self._circuit.is_open:
            try:
                if not await self._redis.set(f"{full_key}:lock", b"1", nx=True, ex=LOCK_SECONDS):
                    raw = await self._wait_for_peer(full_key)
                    document = _decode(raw) if raw is not None and raw != _TOMBSTONE else None
                    if document is not None:
                        return document
            except RedisError as error:
                self._circuit.record_failure("caching", error)
                return await loader()
        value = await loader()
        if value is not None:
            await self._put(full_key, bson.encode(value))
        return value

    async def _wait_for_peer(self, full_key: str) -> bytes | None:
        assert self._redis is not None
        deadline = time.monotonic() + _WAIT_FOR_PEER_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            raw: bytes | None = await self._redis.get(full_key)
            if raw is not None:
                return raw
        return None

    async def _get(self, full_key: str) -> bytes | None:
        if self._redis is None:
            stored = self._local.get(full_key)
            if stored is None or stored[0] < time.monotonic():
                return None
            self._local.move_to_end(full_key)
            return stored[1]
        assert self._batcher is not None
        raw: bytes | None = await self._batcher.execute("GET", full_key)
        self._circuit.record_success()
        return raw

    async def _discard(self, full_key: str) -> None:
        if self._redis is None:
            self._local.pop(full_key, None)
            return
        try:
            await self._redis.delete(full_key)
        except RedisError as error:
            self._circuit.record_failure("caching", error)

    async def _put(self, full_key: str, raw: bytes) -> None:
        ttl = max(1, round(self._ttl * random.uniform(0.9, 1.1)))
        if self._redis is None:
            self._store_local(full_key, raw, ttl, overwrite=False)
            return
        try:
            # NX: a tombstone written meanwhile wins over this possibly stale value.
            await self._redis.set(full_key, raw, ex=ttl, nx=True)
        except RedisError as error:
            self._circuit.record_failure("caching", error)

    def _store_local(self, full_key: str, raw: bytes, ttl: int, *, overwrite: bool) -> None:
        now = time.monotonic()
        stored = self._local.get(full_key)
        if not overwrite and stored is not None and stored[0] >= now:
            return
        self._local[full_key] = (now + ttl, raw)
        self._local.move_to_end(full_key)
        while len(self._local) > _LOCAL_CAPACITY:
            self._local.popitem(last=False)


def _decode(raw: bytes) -> Document | None:
    """The cached document, or None for bytes that are not one (treated as a miss)."""
    try:
        return bson.decode(raw, codec_options=_BSON)
    except bson.errors.InvalidBSON:
        return None
