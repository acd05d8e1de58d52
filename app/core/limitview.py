"""A process's own view of the rate-limit counters in Redis, so that most requests are admitted
without a Redis round trip.

The view holds, per window counter of each client seen lately, Redis's count at the last sync
plus the requests this process admitted since (`unsynced`). Every RATE_LIMIT_SYNC_SECONDS one
pipeline adds the unsynced counts to Redis and reads back the counters of the clients who made
requests since the previous sync. A request is admitted locally only when the client's view is
fresh (synced within FRESH_SYNCS sync intervals) and the estimate stays below the limit minus
the exact margin (RATE_LIMIT_EXACT_MARGIN of the limit, at least MIN_MARGIN requests); otherwise
the caller asks Redis's script, which decides exactly, counting the unsynced requests first.

Error bound. The local path never refuses. It can over-admit only what other processes admitted
for the same client since this process's last sync and beyond the margin: per client and
policy, at most max(0, R * (S + L) - M) requests, where R is the client's request rate summed
over all processes, S the sync interval, L the sync's round trip and M the margin. With the
defaults (S = 0.1 s, M = 10 % of the limit: 20 of 200 a minute) a client is limited exactly
unless it sends more than about 200 requests a second; the seed's per-minute limits stay exact
for every ordinary client. A limit of MIN_MARGIN or less (the login limits) is always decided in
Redis.
"""

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.ratelimit import Policy
    from app.core.redis import RedisClient

FRESH_SYNCS = 5  # a view older than this many sync intervals is not trusted
MIN_MARGIN = 10  # requests below a limit from which Redis decides, whatever the limit
TRACKED_CLIENTS = 20_000  # beyond this many clients, new ones are decided in Redis only


@dataclass(slots=True)
class _Counter:
    window_ms: int
    seen: int = 0  # Redis's count at the last sync, plus what this process added since
    unsynced: int = 0  # admitted here, not yet added in Redis

    @property
    def total(self) -> int:
        return self.seen + self.unsynced


@dataclass(slots=True)
class _Client:
    policies: set["Policy"] = field(default_factory=set)
    synced_at: float | None = None  # monotonic time of the last sync that read its counters
    used_at: float = 0.0


def window_keys(identity: str, policy: "Policy", now_ms: int) -> tuple[str, str]:
    """The Redis keys of the client's current and previous window of `policy`."""
    window_ms = policy.window_seconds * 1000
    index = now_ms // window_ms
    # The hash tag keeps one client's keys in one Redis Cluster slot.
    base = f"botsmith:rl:{{{identity}}}:{policy.window_seconds}"
    return f"{base}:{index}", f"{base}:{index - 1}"


class LocalView:
    def __init__(self, sync_seconds: float, exact_margin: float) -> None:
        self._fresh = sync_seconds * FRESH_SYNCS
        self._margin = exact_margin
        self._counters: dict[str, _Counter] = {}
        self._clients: dict[str, _Client] = {}
        self._used: set[str] = set()  # clients with requests since the last sync
        self._unsynced: set[str] = set()  # keys of counters with unsynced requests
        self._cleaned_at = time.monotonic()

    def admit(
        self, identity: str, policies: tuple["Policy", ...], now_ms: int
    ) -> list[object] | None:
        """The script's result for a request admitted locally, or None: ask Redis."""
        client = self._clients.get(identity)
        now = time.monotonic()
        if client is None or client.synced_at is None or now - client.synced_at > self._fresh:
            return None
        keys = []
        result: list[object] = [1]
        for policy in policies:
            current_key, previous_key = window_keys(identity, policy, now_ms)
            window_ms = policy.window_seconds * 1000
            current = self._counters.get(current_key)
            previous = self._counters.get(previous_key)
            elapsed = (now_ms % window_ms) / window_ms
            estimate = (previous.total if previous else 0) * (1 - elapsed)
            estimate += current.total if current else 0
            margin = max(MIN_MARGIN, math.ceil(policy.limit * self._margin))
            if estimate + 1 > policy.limit - margin:
                return None
            keys.append((current_key, window_ms))
            result += [estimate + 1, 0]
        for key, window_ms in keys:
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = _Counter(window_ms)
            counter.unsynced += 1
            self._unsynced.add(key)
        client.used_at = now
        self._used.add(identity)
        return result

    def take_unsynced(self, key: str) -> int:
        """The requests admitted locally under `key` and not yet in Redis, now the caller's to
        add (the script adds them before deciding)."""
        counter = self._counters.get(key)
        if counter is None:
            return 0
        taken, counter.unsynced = counter.unsynced, 0
        counter.seen += taken
        return taken

    def give_back(self, key: str, window_ms: int, count: int) -> None:
        """Taken requests the caller could not add to Redis."""
        if count:
            counter = self._counters.setdefault(key, _Counter(window_ms))
            counter.seen -= count
            counter.unsynced += count
            self._unsynced.add(key)

    def track(self, identity: str, policies: tuple["Policy", ...]) -> None:
        """A client decided in Redis: its counters are read at the next sync."""
        client = self._clients.get(identity)
        if client is None:
            if len(self._clients) >= TRACKED_CLIENTS:
                return
            client = self._clients[identity] = _Client()
        client.policies.update(policies)
        client.used_at = time.monotonic()
        self._used.add(identity)

    async def sync(self, redis: "RedisClient") -> None:
        """Adds the unsynced counts to Redis and reads back the counters of the clients who
        made requests since the last sync. Raises RedisError; the counts then stay unsynced and
        those clients' views age until a sync succeeds."""
        started, now_ms = time.monotonic(), int(time.time() * 1000)
        used, self._used = self._used, set()
        keys, self._unsynced = self._unsynced, set()
        flushed = [(key, self.take_unsynced(key)) for key in keys]
        reads = [
            key
            for identity in used
            if (client := self._clients.get(identity)) is not None
            for policy in client.policies
            for key in window_keys(identity, policy, now_ms)
        ]
        try:
            results = await self._exchange(redis, flushed, reads) if flushed or reads else []
        except BaseException:
            for key, count in flushed:
                self.give_back(key, self._counters[key].window_ms, count)
            self._used |= used
            raise
        for key, value in zip(reads, results[2 * len(flushed) :], strict=True):
            counter = self._counters.get(key)
            if counter is None:
                window_ms = int(key.rsplit(":", 2)[-2]) * 1000
                counter = self._counters[key] = _Counter(window_ms)
            counter.seen = int(value) if isinstance(value, bytes | int) else 0
        for identity in used:
            if (client := self._clients.get(identity)) is not None:
                client.synced_at = started
        if started - self._cleaned_at > self._fresh:
            self._clean(started, now_ms)

    async def _exchange(
        self, redis: "RedisClient", flushed: list[tuple[str, int]], reads: list[str]
    ) -> list[object]:
        async with redis.pipeline(transaction=False) as pipe:
            for key, count in flushed:
                pipe.incrby(key, count)
                pipe.pexpire(key, self._counters[key].window_ms * 2)
            for key in reads:
                pipe.get(key)
            return list(await pipe.execute())

    def _clean(self, now: float, now_ms: int) -> None:
        """Forgets idle clients (their next request goes to Redis) and past windows."""
        self._cleaned_at = now
        for identity, client in list(self._clients.items()):
            if now - client.used_at > self._fresh:
                del self._clients[identity]
        for key, counter in list(self._counters.items()):
            index = int(key.rsplit(":", 1)[-1])
            if index < now_ms // counter.window_ms - 1 and not counter.unsynced:
                del self._counters[key]
