"""The only code that touches `llm_usage` (tokens spent per owner per month, with each day's
share) and `llm_budgets` (an owner's own limits, set by administrators)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from app.core.db import Document, is_duplicate_key, upsert
from app.core.resources import Resources

_LIMITS_NAMESPACE = "llm-budget"


@dataclass(frozen=True, slots=True)
class SpentTokens:
    day: int
    month: int


@dataclass(frozen=True, slots=True)
class OwnerLimits:
    """An owner's own limits; None: the platform's default."""

    daily_tokens: int | None = None
    monthly_tokens: int | None = None


class TokenUsageRepository:
    def __init__(self, resources: Resources) -> None:
        # Always the primary: a budget is checked against what was spent, not a lagging copy.
        self._usage = resources.db["llm_usage"]
        self._limits = resources.db["llm_budgets"]
        self._cache = resources.cache

    async def add(
        self, user_id: str, month: str, day: str, tokens: int, now: datetime
    ) -> SpentTokens:
        """Counts the tokens atomically; returns the totals after them."""
        change: dict[str, Any] = {
            "$inc": {"tokens": tokens, f"days.{day}": tokens},
            "$set": {"updated_at": now},
            "$setOnInsert": {"user_id": user_id, "month": month},
        }
        owner_month = {"user_id": user_id, "month": month}
        try:
            found = await self._usage.find_one_and_update(
                owner_month, change, upsert=True, return_document=ReturnDocument.AFTER
            )
        except OperationFailure as error:
            # Two first charges of the month raced on the unique index: this one adds again.
            if not is_duplicate_key(error):
                raise
            found = await self._usage.find_one_and_update(
                owner_month, change, return_document=ReturnDocument.AFTER
            )
        return _spent(found, day)

    async def spent(self, user_id: str, month: str, day: str) -> SpentTokens:
        found = await self._usage.find_one({"user_id": user_id, "month": month}, {"_id": 0})
        return _spent(found, day)

    async def limits(self, user_id: str) -> OwnerLimits:
        async def load() -> Document:
            # Cached even when absent: most owners have no limits of their own.
            found = await self._limits.find_one({"user_id": user_id}, {"_id": 0})
            return found or {"user_id": user_id}

        stored = await self._cache.get_or_load(_LIMITS_NAMESPACE, user_id, load) or {}
        return OwnerLimits(stored.get("daily_tokens"), stored.get("monthly_tokens"))

    async def set_limits(
        self, user_id: str, limits: OwnerLimits, admin_id: str, now: datetime
    ) -> None:
        fields = {
            "daily_tokens": limits.daily_tokens,
            "monthly_tokens": limits.monthly_tokens,
            "updated_by": admin_id,
            "updated_at": now,
        }
        change = {"$set": fields, "$setOnInsert": {"user_id": user_id}}
        await upsert(self._limits, {"user_id": user_id}, change)
        await self._cache.invalidate(_LIMITS_NAMESPACE, user_id)


def _spent(found: Document | None, day: str) -> SpentTokens:
    if found is None:
        return SpentTokens(0, 0)
    return SpentTokens(int(found.get("days", {}).get(day, 0)), int(found.get("tokens", 0)))
