"""The only code that touches the sources collection (chunks belong to retrieval)."""

from datetime import datetime
from typing import Any, cast

from app.core.db import Document, MongoDatabase
from app.sources.documents import SourceDocument
from app.sources.schemas import SourceStatus

_NO_DATA = {"_id": 0, "file.data": 0}


class SourceRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._sources = db["sources"]

    async def insert(self, source: SourceDocument) -> None:
        await self._sources.insert_one(cast("Document", source))

    async def get(self, chatbot_id: str, source_id: str) -> SourceDocument | None:
        found = await self._sources.find_one({"id": source_id, "chatbot_id": chatbot_id}, _NO_DATA)
        return cast("SourceDocument | None", found)

    async def get_with_data(self, source_id: str) -> SourceDocument | None:
        found = await self._sources.find_one({"id": source_id}, {"_id": 0})
        return cast("SourceDocument | None", found)

    async def list_for_chatbot(self, chatbot_id: str) -> list[SourceDocument]:
        found = self._sources.find({"chatbot_id": chatbot_id}, _NO_DATA)
        newest = await found.sort([("created_at", -1), ("id", -1)]).to_list()
        return cast("list[SourceDocument]", newest)

    async def count_for_chatbot(self, chatbot_id: str) -> int:
        return await self._sources.count_documents({"chatbot_id": chatbot_id})

    async def chars_for_chatbot(self, chatbot_id: str, excluding: str | None = None) -> int:
        found = self._sources.find(
            {"chatbot_id": chatbot_id, "id": {"$ne": excluding}}, {"_id": 0, "char_count": 1}
        )
        return sum(source.get("char_count") or 0 for source in await found.to_list())

    async def queue_again(
        self, chatbot_id: str, source_id: str, now: datetime
    ) -> SourceDocument | None:
        """Marks a settled (ready or failed) source pending, atomically: of two requests at once,
        one gets the source and the other None, so a source is never queued twice."""
        settled = [SourceStatus.READY.value, SourceStatus.FAILED.value]
        result = await self._sources.update_one(
            {"id": source_id, "chatbot_id": chatbot_id, "status": {"$in": settled}},
            {"$set": {"status": SourceStatus.PENDING.value, "updated_at": now}},
        )
        return await self.get(chatbot_id, source_id) if result.modified_count == 1 else None

    async def stale(self, changed_before: datetime, limit: int) -> list[SourceDocument]:
        """Sources pending or processing whose last change is older than `changed_before`."""
        unsettled = [SourceStatus.PENDING.value, SourceStatus.PROCESSING.value]
        found = self._sources.find(
            {"status": {"$in": unsettled}, "updated_at": {"$lt": changed_before}}, _NO_DATA
        ).limit(limit)
        return cast("list[SourceDocument]", await found.to_list())

    async def update(self, source_id: str, fields: dict[str, Any]) -> None:
        await self._sources.update_one({"id": source_id}, {"$set": fields})

    async def set_status(
        self, source_id: str, status: SourceStatus, now: datetime, **fields: Any
    ) -> None:
        await self.update(source_id, {"status": status.value, "updated_at": now, **fields})

    async def delete(self, source_id: str) -> None:
        await self._sources.delete_one({"id": source_id})
