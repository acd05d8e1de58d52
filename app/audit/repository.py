"""The only code that touches the `audit_log` collection."""

from datetime import datetime
from typing import Any, cast

from app.audit.documents import AuditDocument
from app.core.db import Document, MongoDatabase, delete_batch
from app.core.schemas import after_cursor

_PUBLIC = {"_id": 0}


class AuditRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._entries = db["audit_log"]

    async def insert(self, entry: AuditDocument) -> None:
        await self._entries.insert_one(cast("Document", dict(entry)))

    async def find(
        self, criteria: dict[str, Any], cursor: str | None, limit: int
    ) -> list[AuditDocument]:
        """Entries matching `criteria`, newest first, after `cursor`; `limit` of them at most."""
        position = after_cursor(cursor)
        query = {"$and": [criteria, position]} if position else criteria
        found = self._entries.find(query, _PUBLIC).sort([("created_at", -1), ("id", -1)])
        return cast("list[AuditDocument]", await found.limit(limit).to_list())

    async def delete_older_than(self, cutoff: datetime, batch: int) -> int:
        """Deletes at most `batch` entries created before `cutoff`; returns how many."""
        return await delete_batch(self._entries, {"created_at": {"$lt": cutoff}}, batch)
