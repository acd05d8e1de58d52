"""The only code that touches the sources and source_settings collections (chunks belong to
retrieval)."""

from datetime import datetime
from typing import Any, cast

from app.core.db import Document, MongoDatabase
from app.sources.documents import SourceDocument, SourceSettingsDocument
from app.sources.schemas import RefreshSchedule, SourceKind, SourceStatus

_NO_DATA = {"_id": 0, "file.data": 0, "fetched_pages": 0}
_SETTLED = [SourceStatus.READY.value, SourceStatus.FAILED.value]


class SourceRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._sources = db["sources"]
        self._settings = db["source_settings"]

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

    async def set_schedule(
        self, source_id: str, schedule: RefreshSchedule | None, next_at: datetime | None
    ) -> None:
        await self.update(source_id, {"refresh_schedule": schedule, "next_refresh_at": next_at})

    async def reschedule(self, source_id: str, next_at: datetime | None) -> None:
        await self.update(source_id, {"next_refresh_at": next_at})

    async def following_default(self, chatbot_id: str) -> list[SourceDocument]:
        """The chatbot's URL sources without a refresh schedule of their own."""
        found = self._sources.find(
            {
                "chatbot_id": chatbot_id,
                "kind": SourceKind.URL.value,
                "refresh_schedule": None,  # also matches sources from before schedules
            },
            _NO_DATA,
        )
        return cast("list[SourceDocument]", await found.to_list())

    async def due_for_refresh(self, now: datetime, limit: int) -> list[SourceDocument]:
        """Settled sources whose next refresh is due, the longest due first."""
        found = self._sources.find(
            {"next_refresh_at": {"$lte": now}, "status": {"$in": _SETTLED}}, _NO_DATA
        )
        due = await found.sort([("next_refresh_at", 1), ("id", 1)]).limit(limit).to_list()
        return cast("list[SourceDocument]", due)

    async def claim_for_refresh(self, source_id: str, now: datetime, next_at: datetime) -> bool:
        """Marks a due, settled source `processing` and schedules its next refresh; False when
        it is no longer due or no longer settled (a resync took it, its schedule changed)."""
        result = await self._sources.update_one(
            {"id": source_id, "status": {"$in": _SETTLED}, "next_refresh_at": {"$lte": now}},
            {
                "$set": {
                    "status": SourceStatus.PROCESSING.value,
                    "updated_at": now,
                    "next_refresh_at": next_at,
                }
            },
        )
        return result.modified_count == 1

    async def settings(self, chatbot_id: str) -> SourceSettingsDocument | None:
        found = await self._settings.find_one({"chatbot_id": chatbot_id}, {"_id": 0})
        return cast("SourceSettingsDocument | None", found)

    async def default_schedule(self, chatbot_id: str) -> RefreshSchedule:
        """The chatbot's default refresh schedule (off until its owner sets one)."""
        stored = await self.settings(chatbot_id)
        if stored is None:
            return RefreshSchedule.OFF
        return RefreshSchedule(stored["refresh_schedule"])

    async def save_settings(self, settings: SourceSettingsDocument) -> None:
        await self._settings.update_one(
            {"chatbot_id": settings["chatbot_id"]}, {"$set": dict(settings)}, upsert=True
        )

    async def set_status(
        self, source_id: str, status: SourceStatus, now: datetime, **fields: Any
    ) -> None:
        await self.update(source_id, {"status": status.value, "updated_at": now, **fields})

    async def delete(self, source_id: str) -> None:
        await self._sources.delete_one({"id": source_id})
