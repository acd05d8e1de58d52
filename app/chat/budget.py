"""Owners' LLM token budgets per UTC day and calendar month, shared by every worker and pod.

MongoDB holds the count: one `llm_usage` document per owner per month, incremented atomically by
every charge, so the count survives losing Redis. Redis holds a copy of the current totals that
each admission check reads in one round trip. A charge raises each copy to the total MongoDB
returned (never lowers it; a plain INCRBY on a copy rebuilt meanwhile would count twice), with
expiry at the period's end, so charges racing on different pods leave the latest total in any
order. A missing copy (Redis restarted, a new period) is rebuilt from MongoDB; without Redis, or
while it fails, checks read MongoDB.

A turn is admitted while both periods have tokens left and is charged what it cost afterwards,
so the last turn of a period may pass the limit by up to its max_tokens. The limits are
LLM_OWNER_DAILY_TOKENS and LLM_OWNER_MONTHLY_TOKENS, or an owner's own; 0 is unlimited.
"""

from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Literal

from redis.exceptions import RedisError

from app.chat.budget_repository import OwnerLimits, SpentTokens, TokenUsageRepository
from app.core.errors import DomainError
from app.core.periods import Periods, seconds_until, utc_iso
from app.core.redis import register_script
from app.core.resources import Resources
from app.core.security import utcnow

PeriodName = Literal["daily", "monthly"]

# KEYS: the counters. ARGV, per counter: the total, then the Unix time it expires at.
_RAISE_TO = """
for i, key in ipairs(KEYS) do
  local total = tonumber(ARGV[2 * i - 1])
  local current = tonumber(redis.call('GET', key) or '-1')
  if total > current then
    redis.call('SET', key, total)
    redis.call('EXPIREAT', key, ARGV[2 * i])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    period: PeriodName
    used: int
    limit: int  # 0: unlimited
    resets_at: datetime

    @property
    def exhausted(self) -> bool:
        return self.limit > 0 and self.used >= self.limit

    @property
    def remaining(self) -> int | None:
        return None if self.limit == 0 else max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class OwnerUsage:
    daily: PeriodUsage
    monthly: PeriodUsage
    own_limits: OwnerLimits  # the owner's own limits, None where the platform's default applies


class BudgetExhaustedError(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    title = "Token budget exhausted"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after

    @classmethod
    def of(cls, usage: PeriodUsage, now: datetime) -> "BudgetExhaustedError":
        return cls(
            f"The owner's {usage.period} LLM token budget ({usage.limit} tokens) is used up; "
            f"it resets at {utc_iso(usage.resets_at)}",
            seconds_until(usage.resets_at, now),
        )


def _key(user_id: str, period: str) -> str:
    # The hash tag keeps one owner's counters in one Redis Cluster slot (one script).
    return f"botsmith:llm-tokens:{{{user_id}}}:{period}"


class TokenBudget:
    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self._redis = resources.redis
        self._circuit = resources.redis_circuit
        self._repository = TokenUsageRepository(resources)
        self._raise_to = register_script(self._redis, _RAISE_TO) if self._redis else None

    async def usage(self, user_id: str) -> OwnerUsage:
        return await self._usage_with(user_id, await self._repository.limits(user_id), utcnow())

    async def ensure_available(self, user_id: str) -> None:
        """Raises BudgetExhaustedError (429, with Retry-After) when a period is used up; the
        month's refusal wins, as it lasts longer."""
        own = await self._repository.limits(user_id)
        if self._limits(own) == (0, 0):
            return  # unlimited: nothing to read
        now = utcnow()
        usage = await self._usage_with(user_id, own, now)
        for period in (usage.monthly, usage.daily):
            if period.exhausted:
                raise BudgetExhaustedError.of(period, now)

    async def _usage_with(self, user_id: str, own: OwnerLimits, now: datetime) -> OwnerUsage:
        periods = Periods.at(now)
        daily, monthly = self._limits(own)
        spent = await self._spent(user_id, periods)
        return OwnerUsage(
            daily=PeriodUsage("daily", spent.day, daily, periods.day_ends),
            monthly=PeriodUsage("monthly", spent.month, monthly, periods.month_ends),
            own_limits=own,
        )

    def _limits(self, own: OwnerLimits) -> tuple[int, int]:
        """The owner's daily and monthly limits: their own, else the platform's."""
        settings = self._settings
        return (
            settings.llm_owner_daily_tokens if own.daily_tokens is None else own.daily_tokens,
            settings.llm_owner_monthly_tokens if own.monthly_tokens is None else own.monthly_tokens,
        )

    async def charge(self, user_id: str, tokens: int) -> None:
        if tokens <= 0:
            return
        now = utcnow()
        periods = Periods.at(now)
        spent = await self._repository.add(user_id, periods.month, periods.day, tokens, now)
        await self._copy_to_redis(user_id, periods, spent)

    async def set_limits(self, user_id: str, limits: OwnerLimits, admin_id: str) -> OwnerUsage:
        await self._repository.set_limits(user_id, limits, admin_id, utcnow())
        return await self.usage(user_id)

    async def _spent(self, user_id: str, periods: Periods) -> SpentTokens:
        if self._redis is not None and not self._circuit.is_open:
            try:
                day, month = await self._redis.mget(
                    _key(user_id, periods.day), _key(user_id, periods.month)
                )
                self._circuit.record_success()
            except RedisError as error:
                self._circuit.record_failure("token budgets", error)
            else:
                if day is not None and month is not None:
                    return SpentTokens(int(day), int(month))
        spent = await self._repository.spent(user_id, periods.month, periods.day)
        await self._copy_to_redis(user_id, periods, spent)
        return spent

    async def _copy_to_redis(self, user_id: str, periods: Periods, spent: SpentTokens) -> None:
        if self._raise_to is None or self._circuit.is_open:
            return
        try:
            await self._raise_to(
                keys=[_key(user_id, periods.day), _key(user_id, periods.month)],
                args=[
                    spent.day,
                    int(periods.day_ends.timestamp()),
                    spent.month,
                    int(periods.month_ends.timestamp()),
                ],
            )
        except RedisError as error:
            self._circuit.record_failure("token budgets", error)
