"""The only code that touches `plans` and `usage`, and the quota domain's read-only view of the
stocks it limits (an owner's chatbots and their sources)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from app.core.db import Document, upsert
from app.core.resources import Resources
from app.core.writers import this_process
from app.quotas.documents import BotQuotasDocument, PlanDocument, UsageDocument

_PLAN_NAMESPACE = "plan"
_DELETING = "deleting"  # a chatbot being purged counts no more


def chatbot_scope(chatbot_id: str) -> str:
    return f"chatbot:{chatbot_id}"


def owner_scope(user_id: str) -> str:
    return f"owner:{user_id}"


class PlanRepository:
    def __init__(self, resources: Resources) -> None:
        self._plans = resources.db["plans"]
        self._cache = resources.cache

    async def get(self, user_id: str) -> PlanDocument | None:
        async def load() -> Document:
            # Cached even when absent: most owners have the platform's defaults.
            found = await self._plans.find_one({"user_id": user_id}, {"_id": 0})
            return found or {"user_id": user_id}

        stored = await self._cache.get_or_load(_PLAN_NAMESPACE, user_id, load)
        if stored is None or "updated_at" not in stored:
            return None
        return cast("PlanDocument", stored)

    async def put(self, plan: PlanDocument) -> None:
        """Replaces the owner's plan (created on first use; the unique index settles a race)."""
        user_id = plan["user_id"]
        fields = {name: value for name, value in plan.items() if name != "user_id"}
        change = {"$set": fields, "$setOnInsert": {"user_id": user_id}}
        await upsert(self._plans, {"user_id": user_id}, change)
        await self._cache.invalidate(_PLAN_NAMESPACE, user_id)


class UsageRepository:
    """Messages per scope and month; read on the primary (a quota is checked against what was
    counted, not a lagging copy)."""

    def __init__(self, resources: Resources) -> None:
        self._usage = resources.db["usage"]

    async def add_message(
        self, scope: str, user_id: str, chatbot_id: str | None, month: str, day: str, now: datetime
    ) -> None:
        change: dict[str, Any] = {
            "$inc": {"messages": 1, f"days.{day}": 1},
            "$set": {"updated_at": now},
            "$setOnInsert": {
                "scope": scope,
                "month": month,
                "user_id": user_id,
                "chatbot_id": chatbot_id,
            },
        }
        # One document per writing process (`app.core.writers`): FerretDB loses concurrent $inc.
        writer = this_process()
        key = {"scope": scope, "month": month, "writer": writer.name}
        async with writer.serialised((scope, month)):
            await upsert(self._usage, key, change)

    async def for_scopes(self, scopes: list[str], month: str) -> dict[str, UsageDocument]:
        return await self._summed({"scope": {"$in": scopes}, "month": month})

    async def for_owner(self, user_id: str, month: str) -> dict[str, UsageDocument]:
        return await self._summed({"user_id": user_id, "month": month})

    async def _summed(self, query: Document) -> dict[str, UsageDocument]:
        """Each scope's month, summed over the documents of the processes that counted it."""
        summed: dict[str, UsageDocument] = {}
        async for found in self._usage.find(query, {"_id": 0, "writer": 0}):
            document = cast("UsageDocument", found)
            total = summed.get(document["scope"])
            if total is None:
                summed[document["scope"]] = {**document, "days": dict(document["days"])}
                continue
            total["messages"] += document["messages"]
            for day, count in document["days"].items():
                total["days"][day] = total["days"].get(day, 0) + count
        return summed


@dataclass(frozen=True, slots=True)
class OwnedBot:
    chatbot_id: str
    name: str
    quotas: BotQuotasDocument | None


class StockRepository:
    """Read-only counts of what an owner keeps, for the usage view (the chatbots and sources
    domains check their own caps where they write)."""

    def __init__(self, resources: Resources) -> None:
        self._chatbots = resources.db["chatbots"]
        self._sources = resources.db["sources"]

    async def chatbots(self, user_id: str) -> list[OwnedBot]:
        found = self._chatbots.find(
            {"user_id": user_id, "status": {"$ne": _DELETING}},
            {"_id": 0, "id": 1, "name": 1, "quotas": 1, "created_at": 1},
        ).sort([("created_at", -1), ("id", -1)])
        return [OwnedBot(bot["id"], bot["name"], bot.get("quotas")) async for bot in found]

    async def sources(self, user_id: str) -> dict[str, tuple[int, int]]:
        """Per chatbot: its sources and their stored characters."""
        totals: dict[str, tuple[int, int]] = {}
        found = self._sources.find(
            {"user_id": user_id}, {"_id": 0, "chatbot_id": 1, "char_count": 1}
        )
        async for source in found:
            count, chars = totals.get(source["chatbot_id"], (0, 0))
            totals[source["chatbot_id"]] = (count + 1, chars + (source.get("char_count") or 0))
        return totals
