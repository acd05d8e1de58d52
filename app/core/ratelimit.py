"""Per-client rate limits shared by every worker and pod: sliding-window counters in Redis.

Each policy (for example 200 a minute and 5000 an hour) keeps a counter for the current and the
previous window; the estimate weighs the previous one by how much of it still overlaps the
sliding window. One Lua script checks every policy and counts the request only when all allow
it. Without Redis the same arithmetic runs in-process.

Local first (`app.core.limitview`): a client this process has seen lately and who is far from
their limits is admitted from the process's own view of the counters, which is added to Redis
and refreshed from it every RATE_LIMIT_SYNC_SECONDS; near a limit (within
RATE_LIMIT_EXACT_MARGIN of it), for a client new to the process and for every refusal, the script
decides, exactly. The error bound is in LocalView's docstring.
"""

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.exceptions import NoScriptError, RedisError

from app.core.config import Settings
from app.core.limitview import LocalView, window_keys
from app.core.metrics import RATE_LIMIT_DECISIONS, RATE_LIMIT_FAIL_OPEN, labelled
from app.core.redis import RedisBatcher, RedisCircuit, RedisClient

# KEYS: per policy, the current then the previous window's counter.
# ARGV: now (ms), then per policy: limit, window (ms), and the requests admitted locally and not
# yet counted in Redis, for the current and the previous window (added first). Returns the
# allowed flag for all, then per policy: the estimate after, and the milliseconds until one more
# request would be allowed.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local policies = (#ARGV - 1) / 4
local allowed = 1
local estimates = {}
local retries = {}
for i = 1, policies do
  local window = tonumber(ARGV[4 * i - 1])
  for k = 0, 1 do
    local unsynced = tonumber(ARGV[4 * i + k])
    if unsynced > 0 then
      redis.call('INCRBY', KEYS[2 * i - 1 + k], unsynced)
      redis.call('PEXPIRE', KEYS[2 * i - 1 + k], window * 2)
    end
  end
end
for i = 1, policies do
  local limit = tonumber(ARGV[4 * i - 2])
  local window = tonumber(ARGV[4 * i - 1])
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local elapsed = (now % window) / window
  local estimate = previous * (1 - elapsed) + current
  estimates[i] = estimate
  retries[i] = 0
  if estimate + 1 > limit then
    allowed = 0
    local left = window - (now % window)
    if current + 1 > limit then
      retries[i] = left + math.ceil((1 - (limit - 1) / (current + 0.0)) * window)
    else
      retries[i] = math.ceil((1 - (limit - 1 - current) / previous) * window - (now % window))
    end
  end
end
if allowed == 1 then
  for i = 1, policies do
    local window = tonumber(ARGV[4 * i - 1])
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('PEXPIRE', KEYS[2 * i - 1], window * 2)
    estimates[i] = estimates[i] + 1
  end
end
local result = {allowed}
for i = 1, policies do
  result[#result + 1] = tostring(estimates[i])
  result[#result + 1] = retries[i]
end
return result
"""


logger = logging.getLogger(__name__)
_DECISIONS = labelled(RATE_LIMIT_DECISIONS)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policies: tuple[Policy, ...]
    tightest: Policy
    remaining: int
    reset_seconds: int
    retry_after: int = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        """IETF RateLimit-Policy and RateLimit fields, plus Retry-After when refused."""
        policy = ", ".join(f'"{p.name}";q={p.limit};w={p.window_seconds}' for p in self.policies)
        limit = f'"{self.tightest.name}";r={self.remaining};t={self.reset_seconds}'
        fields = [(b"ratelimit-policy", policy.encode()), (b"ratelimit", limit.encode())]
        if not self.allowed:
            fields.append((b"retry-after", str(self.retry_after).encode()))
        return fields


def _number(value: object) -> float:
    """A script result: Redis returns integers, and strings as bytes."""
    return float(value.decode() if isinstance(value, bytes) else str(value))


def route_policies(settings: Settings) -> dict[str, tuple[Policy, ...]]:
    """The limits of each route class: `default`, `auth` (login, registration, refresh) and
    `public` (the widget's visitors), per minute and per hour."""
    return {
        "default": (
            Policy("minute", settings.rate_limit_per_minute, 60),
            Policy("hour", settings.rate_limit_per_hour, 3600),
        ),
        "auth": (
            Policy("auth-minute", settings.rate_limit_login_per_minute, 60),
            Policy("auth-hour", settings.rate_limit_login_per_hour, 3600),
        ),
        "public": (
            Policy("public-minute", settings.rate_limit_public_per_minute, 60),
            Policy("public-hour", settings.rate_limit_public_per_hour, 3600),
        ),
    }


class VerifiedKeys:
    """Digests of the API keys this process verified lately. Only these may be a rate-limit
    identity of their own: a made-up key is counted as its caller's address, so inventing keys
    cannot mint fresh buckets."""

    def __init__(self, capacity: int = 10_000, ttl_seconds: float = 300.0) -> None:
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, digest: str) -> None:
        self._seen[digest] = time.monotonic() + self._ttl
        self._seen.move_to_end(digest)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __contains__(self, digest: object) -> bool:
        expires = self._seen.get(digest) if isinstance(digest, str) else None
        return expires is not None and expires > time.monotonic()


class RateLimiter:
    """Counts a caller's requests against the limits of a route class (`route_policies`); HTTP
    middleware and WebSocket chat messages share it."""

    def __init__(
        self,
        redis: RedisClient | None,
        circuit: RedisCircuit,
        policies: dict[str, tuple[Policy, ...]],
        sync_seconds: float = 0.0,
        exact_margin: float = 0.1,
    ) -> None:
        """sync_seconds > 0 (with Redis) admits clients far from their limits from this
        process's view of the counters, synced that often (`app.core.limitview`)."""
        self._redis = redis
        self._circuit = circuit
        self._policies = policies
        self._sha = hashlib.sha1(_SLIDING_WINDOW.encode()).hexdigest()
        self._batcher = RedisBatcher(redis) if redis is not None else None
        self._local: dict[str, tuple[int, int]] = {}  # key -> (window index, count)
        self._sync_seconds = sync_seconds
        use_view = redis is not None and sync_seconds > 0
        self._view = LocalView(sync_seconds, exact_margin) if use_view else None
        self._syncing: asyncio.Task[None] | None = None

    async def hit(self, identity: str, route_class: str) -> Decision:
        policies = self._policies[route_class]
        now_ms = int(time.time() * 1000)
        raw: list[object] | None
        if self._redis is None:
            raw = self._hit_local(identity, policies, now_ms)
        else:
            if self._circuit.is_open:
                return self._fail_open(route_class, policies)
            raw = self._admit_locally(identity, policies, now_ms)
            if raw is None:
                try:
                    raw = await self._hit_redis(identity, policies, now_ms)
                except RedisError as error:
                    self._circuit.record_failure("rate limiting", error)
                    return self._fail_open(route_class, policies)
                self._circuit.record_success()
        decision = self._decide(raw, policies, now_ms)
        _DECISIONS(route_class, "allowed" if decision.allowed else "limited").inc()
        return decision

    def _admit_locally(
        self, identity: str, policies: tuple[Policy, ...], now_ms: int
    ) -> list[object] | None:
        if self._view is None:
            return None
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self._sync_forever(self._view))
        return self._view.admit(identity, policies, now_ms)

    async def _hit_redis(
        self, identity: str, policies: tuple[Policy, ...], now_ms: int
    ) -> list[object]:
        """The exact decision: the script, given the requests admitted locally and not yet
        counted in Redis."""
        keys = [key for policy in policies for key in window_keys(identity, policy, now_ms)]
        view = self._view
        taken = [view.take_unsynced(key) if view else 0 for key in keys]
        args: list[int] = [now_ms]
        for i, policy in enumerate(policies):
            args += [policy.limit, policy.window_seconds * 1000, taken[2 * i], taken[2 * i + 1]]
        try:
            raw = await self._run_script(keys, args)
        except BaseException:
            if view is not None:
                for key, count, policy in zip(keys, taken, _each_twice(policies), strict=True):
                    view.give_back(key, policy.window_seconds * 1000, count)
            raise
        if view is not None:
            view.track(identity, policies)
        return raw

    async def _sync_forever(self, view: LocalView) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._sync_seconds)
            if self._circuit.is_open:
                continue
            try:
                await view.sync(self._redis)
            except RedisError as error:
                self._circuit.record_failure("rate limiting", error)
            except Exception:
                logger.exception("rate-limit view sync failed; it runs again")

    async def close(self) -> None:
        """Stops syncing, adding what was admitted locally to Redis first."""
        if self._syncing is None:
            return
        self._syncing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._syncing
        if self._view is not None and self._redis is not None:
            with contextlib.suppress(RedisError):
                await self._view.sync(self._redis)

    async def _run_script(self, keys: list[str], args: list[int]) -> list[object]:
        """EVALSHA through the batcher, loading the script on NOSCRIPT (first use, restarts)."""
        assert self._batcher is not None
        command: tuple[str | int, ...] = ("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            result = await self._batcher.execute(*command)
        except NoScriptError:
            assert self._redis is not None
            await self._redis.script_load(_SLIDING_WINDOW)
            result = await self._batcher.execute(*command)
        return list(result)

    @staticmethod
    def _decide(raw: list[object], policies: tuple[Policy, ...], now_ms: int) -> Decision:
        allowed = _number(raw[0]) == 1
        tightest, remaining, reset, retry_ms = policies[0], None, 0, 0
        for i, policy in enumerate(policies):
            estimate = _number(raw[1 + 2 * i])
            retry_ms = max(retry_ms, int(_number(raw[2 + 2 * i])))
            left = max(0, math.floor(policy.limit - estimate))
            if remaining is None or left < remaining:
                tightest, remaining = policy, left
                window_ms = policy.window_seconds * 1000
                reset = math.ceil((window_ms - now_ms % window_ms) / 1000)
        return Decision(
            allowed=allowed,
            policies=policies,
            tightest=tightest,
            remaining=remaining or 0,
            reset_seconds=reset,
            retry_after=max(1, math.ceil(retry_ms / 1000)) if not allowed else 0,
        )

    def _fail_open(self, route_class: str, policies: tuple[Policy, ...]) -> Decision:
        RATE_LIMIT_FAIL_OPEN.inc()
        _DECISIONS(route_class, "fail_open").inc()
        first = policies[0]
        return Decision(True, policies, first, first.limit, first.window_seconds)

    def _hit_local(self, identity: str, policies: tuple[Policy, ...], now_ms: int) -> list[object]:
        """The Lua script's arithmetic, for a single process without Redis."""
        counts = []
        allowed = True
        result: list[object] = []
        for policy in policies:
            window_ms = policy.window_seconds * 1000
            index = now_ms // window_ms
            current_key, previous_key = window_keys(identity, policy, now_ms)
            current = self._count(current_key, index)
            previous = self._count(previous_key, index - 1)
            elapsed = (now_ms % window_ms) / window_ms
            estimate = previous * (1 - elapsed) + current
            retry = 0
            if estimate + 1 > policy.limit:
                allowed = False
                left = window_ms - now_ms % window_ms
                if current + 1 > policy.limit:
                    retry = left + math.ceil((1 - (policy.limit - 1) / current) * window_ms)
                else:
                    share = (policy.limit - 1 - current) / previous
                    retry = math.ceil((1 - share) * window_ms - now_ms % window_ms)
            counts.append((current_key, index, current, estimate, retry))
        result.append(1 if allowed else 0)
        for key, index, current, estimate, retry in counts:
            if allowed:
                self._local[key] = (index, current + 1)
                estimate += 1
            result += [estimate, retry]
        if len(self._local) > 100_000:
            self._prune(now_ms)
        return result

    def _count(self, key: str, index: int) -> int:
        stored = self._local.get(key)
        return stored[1] if stored is not None and stored[0] == index else 0

    def _prune(self, now_ms: int) -> None:
        for key, (index, _) in list(self._local.items()):
            window_ms = int(key.rsplit(":", 2)[-2]) * 1000
            if index < now_ms // window_ms - 1:
                del self._local[key]


def _each_twice(policies: tuple[Policy, ...]) -> list[Policy]:
    """The policy of each of `window_keys`' keys, in their order."""
    return [policy for policy in policies for _ in range(2)]
