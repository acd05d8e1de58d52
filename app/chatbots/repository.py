"""The only code that touches the chatbots collection, and the cascade over a bot's data."""

import re
from typing import Any, cast

from pymongo import ReturnDocument

from app.chatbots.documents import ChatbotDocument
from app.chatbots.schemas import ChatbotStatus
from app.core.db import Document, without_id
from app.core.resources import Resources
from app.core.schemas import after_cursor

# Every collection whose documents belong to one chatbot (by chatbot_id).
CHATBOT_OWNED_COLLECTIONS = (
    "api_keys",
    "chunks",
    "index_segments",
    "index_segment_data",
    "sources",
    "source_settings",
    "messages",
    "conversations",
    "leads",
    "chatbot_agents",
    "handoff_marks",
    "eval_cases",
    "eval_runs",
    "eval_results",
    "webhook_endpoints",
    "webhook_deliveries",
    "analytics_hours",
    "analytics_resolutions",
    "usage",  # the bot's own monthly records (the owner's total is kept by the owner's scope)
)
_DELETING = ChatbotStatus.DELETING.value
_VISIBLE = {"status": {"$ne": _DELETING}}


class ChatbotRepository:
    """Chatbots by id are read through the cache; every write here invalidates the entry."""

    def __init__(self, resources: Resources) -> None:
        self._db = resources.db
        self._chatbots = resources.db["chatbots"]
        self._listing = resources.reads.database("listing")["chatbots"]
        self._cache = resources.cache

    async def insert(self, chatbot: ChatbotDocument) -> None:
        await self._chatbots.insert_one(cast("Document", chatbot))

    async def by_id(self, chatbot_id: str) -> ChatbotDocument | None:
        """The chatbot, whoever owns it and whatever its state (callers decide)."""
        return cast(
            "ChatbotDocument | None",
            await self._cache.get_or_load(
                "chatbot",
                chatbot_id,
                lambda: self._chatbots.find_one({"id": chatbot_id}, {"_id": 0}),
            ),
        )

    async def owned(self, user_id: str, chatbot_id: str) -> ChatbotDocument | None:
        chatbot = await self.by_id(chatbot_id)
        if chatbot is None or chatbot["user_id"] != user_id or chatbot["status"] == _DELETING:
            return None
        return chatbot

    async def list_owned(
        self, user_id: str, *, name_contains: str | None, cursor: str | None, limit: int
    ) -> list[ChatbotDocument]:
        query: dict[str, Any] = {"user_id": user_id, **_VISIBLE}
        if name_contains:
            query["name"] = {"$regex": re.escape(name_contains), "$options": "i"}
        query.update(after_cursor(cursor))
        found = self._listing.find(query, {"_id": 0}).sort([("created_at", -1), ("id", -1)])
        return cast("list[ChatbotDocument]", await found.limit(limit).to_list())

    async def update_owned(
        self, user_id: str, chatbot_id: str, fields: dict[str, Any]
    ) -> ChatbotDocument | None:
        updated = without_id(
            await self._chatbots.find_one_and_update(
                {"id": chatbot_id, "user_id": user_id, **_VISIBLE},
                {"$set": fields},
                return_document=ReturnDocument.AFTER,
            )
        )
        await self._cache.invalidate("chatbot", chatbot_id)
        return cast("ChatbotDocument | None", updated)

    async def bump_knowledge(self, chatbot_id: str) -> None:
        """The bot's knowledge changed: retrieval indexes everywhere rebuild on their next use."""
        await self._chatbots.update_one({"id": chatbot_id}, {"$inc": {"knowledge_version": 1}})
        await self._cache.invalidate("chatbot", chatbot_id)

    async def mark_deleting(self, user_id: str, chatbot_id: str) -> bool:
        result = await self._chatbots.update_one(
            {"id": chatbot_id, "user_id": user_id, **_VISIBLE}, {"$set": {"status": _DELETING}}
        )
        await self._cache.invalidate("chatbot", chatbot_id)
        return result.modified_count == 1

    async def purge(self, chatbot_id: str) -> None:
        """Deletes everything the bot owns, then the bot; safe to repeat after a crash."""
        for collection in CHATBOT_OWNED_COLLECTIONS:
            await self._db[collection].delete_many({"chatbot_id": chatbot_id})
        await self._chatbots.delete_one({"id": chatbot_id, "status": _DELETING})
        await self._cache.invalidate("chatbot", chatbot_id)

    async def owner_chatbot_ids(self, user_id: str, limit: int) -> list[str]:
        """The account's bots, those being deleted included (for the account's erasure)."""
        found = self._chatbots.find({"user_id": user_id}, {"_id": 0, "id": 1}).limit(limit)
        return [document["id"] for document in await found.to_list()]

    async def hide(self, chatbot_id: str) -> None:
        """Marks the bot as being deleted, whoever owns it (purge() then deletes it)."""
        await self._chatbots.update_one({"id": chatbot_id}, {"$set": {"status": _DELETING}})
        await self._cache.invalidate("chatbot", chatbot_id)

    async def retention_policies(self) -> list[tuple[str, int]]:
        """(bot id, retention days) of every bot that deletes old conversations."""
        found = self._chatbots.find(
            {"retention_days": {"$gte": 1}, **_VISIBLE}, {"_id": 0, "id": 1, "retention_days": 1}
        )
        return [(document["id"], document["retention_days"]) for document in await found.to_list()]

    async def pending_purges(self) -> list[str]:
        found = self._chatbots.find({"status": _DELETING}, {"_id": 0, "id": 1})
        return [document["id"] for document in await found.to_list()]

    async def count(self) -> int:
        return await self._listing.count_documents(_VISIBLE)

    async def count_owned(self, user_id: str) -> int:
        """On the primary: a cap is checked against what is written, not a lagging copy."""
        return await self._chatbots.count_documents({"user_id": user_id, **_VISIBLE})

    async def remove_unused(self, chatbot_id: str) -> None:
        """Takes back a bot that was just inserted and never handed out (over a cap)."""
        await self._chatbots.delete_one({"id": chatbot_id})
