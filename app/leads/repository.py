"""The only code that touches the leads collection (analytics counts them through its own
repository; a chatbot's deletion purges them, `ChatbotRepository.purge`)."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import DuplicateKeyError

from app.core.db import without_id
from app.core.resources import Resources
from app.core.schemas import after_cursor
from app.leads.documents import LeadDocument

# Written once, when the session's first lead is stored; every later submit keeps them.
_FIRST_SUBMIT_ONLY = ("id", "user_id", "created_at")
_KEY = ("chatbot_id", "session_id")


def _created_between(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    window: dict[str, datetime] = {}
    if since is not None:
        window["$gte"] = since
    if until is not None:
        window["$lt"] = until
    return {"created_at": window} if window else {}


class LeadRepository:
    def __init__(self, resources: Resources) -> None:
        self._leads = resources.db["leads"]
        self._listing = resources.reads.database("listing")["leads"]

    async def save(self, lead: LeadDocument) -> tuple[LeadDocument, bool]:
        """Stores the session's lead, or updates the one it already has (unique per bot and
        session); True when it was created. A submit without a conversation id keeps the
        stored one."""
        document = cast("dict[str, Any]", lead)
        key = {name: document[name] for name in _KEY}
        on_insert = {name: document[name] for name in _FIRST_SUBMIT_ONLY}
        changes = {
            name: value
            for name, value in document.items()
            if name not in _FIRST_SUBMIT_ONLY and name not in _KEY
        }
        update = {"$set": changes, "$setOnInsert": on_insert}
        try:
            stored = await self._upsert(key, update)
        except DuplicateKeyError:
            # A first submit from the same session raced this one and inserted: update it.
            stored = await self._upsert(key, update)
        return stored, stored["id"] == lead["id"]

    async def _upsert(self, key: dict[str, Any], update: dict[str, Any]) -> LeadDocument:
        stored = await self._leads.find_one_and_update(
            key, update, upsert=True, return_document=ReturnDocument.AFTER
        )
        return cast("LeadDocument", without_id(stored))

    async def list_for_chatbot(
        self,
        chatbot_id: str,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> list[LeadDocument]:
        """Newest first."""
        query = {"chatbot_id": chatbot_id, **_created_between(since, until), **after_cursor(cursor)}
        found = self._listing.find(query, {"_id": 0}).sort([("created_at", -1), ("id", -1)])
        return cast("list[LeadDocument]", await found.limit(limit).to_list())

    async def all_for_chatbot(
        self, chatbot_id: str, since: datetime | None, until: datetime | None
    ) -> AsyncIterator[LeadDocument]:
        """Oldest first, read in batches (for exports)."""
        found = cast(
            "AsyncCursor[LeadDocument]",
            self._listing.find(
                {"chatbot_id": chatbot_id, **_created_between(since, until)}, {"_id": 0}
            ),
        )
        async for lead in found.sort([("created_at", 1), ("id", 1)]).batch_size(500):
            yield lead

    async def delete(self, chatbot_id: str, lead_id: str) -> bool:
        result = await self._leads.delete_one({"id": lead_id, "chatbot_id": chatbot_id})
        return result.deleted_count == 1
