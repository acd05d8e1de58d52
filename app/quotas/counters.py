"""Message quotas, counted atomically across every API process.

A chat turn counts once against each of its counters: the bot's day and month, the owner's
month and, with a visitor session, the session's clock hour (UTC periods). One Lua script checks
every counter and increments them all only when none is at its limit, so a refused turn counts
nowhere; each key names its period and expires at the period's end, so a new period starts
from zero. The owner's hash tag keeps one turn's keys in one Redis Cluster slot.

MongoDB keeps the record of each month (`usage`, with each day's share), written after the
turn is admitted, so losing Redis loses no month: a missing key is rebuilt from the record
before the script counts on it (the script reports which keys it needs). Session hours are
kept in Redis only. Without Redis (a single process), or while Redis fails, the same rules run
on counters in this process, rebuilt from the record the same way.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError

from app.core.periods import Periods
from app.core.redis import register_script
from app.core.resources import Resources
from app.core.security import utcnow
from app.quotas.documents import BotQuotasDocument
from app.quotas.errors import QuotaExceededError
from app.quotas.plans import Plans
from app.quotas.repository import UsageRepository, chatbot_scope, owner_scope
from app.quotas.schemas import QuotaName

# KEYS: the counters. ARGV, per counter: its limit (0: none), the Unix time it expires at, and
# the count to start a missing key from (-1: not known; the caller reads the record), which is
# stored even when the turn is refused, so a refused period is not read from MongoDB again.
# Returns {0, i...} when counters i are missing and their start is not known, {2, i} when
# counter i is at its limit (nothing is counted either way), {1} when every counter counted.
_COUNT_TURN = """
local counts = {}
local missing = {0}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current then
    counts[i] = tonumber(current)
  else
    counts[i] = tonumber(ARGV[3 * i])
    if counts[i] < 0 then
      missing[#missing + 1] = i
    else
      redis.call('SET', key, counts[i])
      redis.call('EXPIREAT', key, ARGV[3 * i - 1])
    end
  end
end
if #missing > 1 then return missing end
for i = 1, #KEYS do
  local limit = tonumber(ARGV[3 * i - 2])
  if limit > 0 and counts[i] >= limit then return {2, i} end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, counts[i] + 1)
  redis.call('EXPIREAT', key, ARGV[3 * i - 1])
end
return {1}
"""
_UNKNOWN = -1
_WHAT = {
    QuotaName.CHATBOT_MESSAGES_PER_DAY: "This chatbot's daily message quota",
    QuotaName.CHATBOT_MESSAGES_PER_MONTH: "This chatbot's monthly message quota",
    QuotaName.OWNER_MESSAGES_PER_MONTH: "The account's monthly message quota",
    QuotaName.SESSION_MESSAGES_PER_HOUR: "This visitor session's hourly message quota",
}


@dataclass(frozen=True, slots=True)
class Counter:
    quota: QuotaName
    key: str
    limit: int | None
    resets_at: datetime
    # Where MongoDB records it: (scope, day or None for the month's total); None: not recorded.
    record: tuple[str, str | None] | None


def quota_key(user_id: str, *parts: str) -> str:
    return ":".join((f"botsmith:quota:{{{user_id}}}", *parts))


def turn_counters(
    user_id: str,
    chatbot_id: str,
    bot: BotQuotasDocument | None,
    owner_messages_per_month: int | None,
    session_id: str | None,
    periods: Periods,
) -> list[Counter]:
    bot = bot or {}
    scope = chatbot_scope(chatbot_id)
    counters = [
        Counter(
            QuotaName.CHATBOT_MESSAGES_PER_DAY,
            quota_key(user_id, "chatbot", chatbot_id, "day", periods.day),
            bot.get("messages_per_day"),
            periods.day_ends,
            (scope, periods.day),
        ),
        Counter(
            QuotaName.CHATBOT_MESSAGES_PER_MONTH,
            quota_key(user_id, "chatbot", chatbot_id, "month", periods.month),
            bot.get("messages_per_month"),
            periods.month_ends,
            (scope, None),
        ),
        Counter(
            QuotaName.OWNER_MESSAGES_PER_MONTH,
            quota_key(user_id, "owner", "month", periods.month),
            owner_messages_per_month,
            periods.month_ends,
            (owner_scope(user_id), None),
        ),
    ]
    if session_id is not None:
        counters.append(
            Counter(
                QuotaName.SESSION_MESSAGES_PER_HOUR,
                quota_key(user_id, "session", chatbot_id, session_id, "hour", periods.hour),
                bot.get("session_messages_per_hour"),
                periods.hour_ends,
                None,
            )
        )
    return counters


class LocalCounters:
    """The counters of this process, for when there is no Redis (or it fails)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)

    def missing(self, counters: list[Counter]) -> list[Counter]:
        now = time.time()
        return [c for c in counters if self._counts.get(c.key, (0, 0.0))[1] <= now]

    def count(self, counters: list[Counter], starts: dict[str, int]) -> Counter | None:
        """Counts the turn on every counter, or on none: returns the one at its limit."""
        now = time.time()
        current = {}
        for counter in counters:
            count, expires = self._counts.get(counter.key, (0, 0.0))
            current[counter.key] = count if expires > now else starts.get(counter.key, 0)
        for counter in counters:
            if counter.limit is not None and current[counter.key] >= counter.limit:
                return counter
        for counter in counters:
            self._counts[counter.key] = (current[counter.key] + 1, counter.resets_at.timestamp())
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        return None


# One per process: without Redis, the process is the only one counting.
_LOCAL = LocalCounters()


class MessageQuotas:
    def __init__(self, resources: Resources) -> None:
        self._redis = resources.redis
        self._circuit = resources.redis_circuit
        self._plans = Plans(resources)
        self._usage = UsageRepository(resources)
        self._script = register_script(self._redis, _COUNT_TURN) if self._redis else None

    async def count_turn(
        self,
        user_id: str,
        chatbot_id: str,
        bot: BotQuotasDocument | None,
        session_id: str | None,
    ) -> None:
        """Counts one chat turn, or raises QuotaExceededError (429, nothing counted)."""
        now = utcnow()
        periods = Periods.at(now)
        plan = await self._plans.of(user_id)
        counters = turn_counters(
            user_id, chatbot_id, bot, plan.messages_per_month, session_id, periods
        )
        refused = await self._count(counters, periods)
        if refused is not None:
            assert refused.limit is not None
            what = _WHAT[refused.quota]
            raise QuotaExceededError(refused.quota, refused.limit, what, refused.resets_at, now)
        for scope, scoped_id in (
            (chatbot_scope(chatbot_id), chatbot_id),
            (owner_scope(user_id), None),
        ):
            await self._usage.add_message(
                scope, user_id, scoped_id, periods.month, periods.day, now
            )

    async def _count(self, counters: list[Counter], periods: Periods) -> Counter | None:
        if self._script is not None and not self._circuit.is_open:
            try:
                return await self._count_in_redis(counters, periods)
            except RedisError as error:
                self._circuit.record_failure("quotas", error)
        missing = _LOCAL.missing(counters)
        starts = await self._recorded(missing, periods) if missing else {}
        return _LOCAL.count(counters, starts)

    async def _count_in_redis(self, counters: list[Counter], periods: Periods) -> Counter | None:
        assert self._script is not None
        starts: dict[str, int] = {}
        for _ in range(3):
            args: list[int] = []
            for counter in counters:
                start = starts.get(counter.key, _UNKNOWN if counter.record else 0)
                args += [counter.limit or 0, int(counter.resets_at.timestamp()), start]
            result = [
                int(value)
                for value in await self._script(keys=[c.key for c in counters], args=args)
            ]
            self._circuit.record_success()
            if result[0] == 1:
                return None
            if result[0] == 2:
                return counters[result[1] - 1]
            starts = await self._recorded([counters[i - 1] for i in result[1:]], periods)
        # Redis keeps losing the keys (restarting, evicting): counted in-process meanwhile.
        raise RedisError("quota counters kept disappearing while being rebuilt")

    async def _recorded(self, counters: list[Counter], periods: Periods) -> dict[str, int]:
        """What MongoDB recorded for these counters this period (0 for those it does not keep)."""
        scopes = sorted({c.record[0] for c in counters if c.record is not None})
        found = await self._usage.for_scopes(scopes, periods.month) if scopes else {}
        starts = {}
        for counter in counters:
            if counter.record is None:
                starts[counter.key] = 0
                continue
            scope, day = counter.record
            usage = found.get(scope)
            if usage is None:
                starts[counter.key] = 0
            elif day is None:
                starts[counter.key] = usage.get("messages", 0)
            else:
                starts[counter.key] = usage.get("days", {}).get(day, 0)
        return starts
