"""Analytics reads and writes: the hourly rollups on the `analytics` read preference (served by
`idx_analytics_hours_bot_hour`), the admin's platform counts as pipelines FerretDB and MongoDB both
run ($match, $project, $count), the recount of a bot's raw messages for `botsmith analytics
backfill` and `check`, and the owner's answers to unanswered questions."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

from pymongo.errors import DuplicateKeyError

from app.chat.documents import ConversationDocument, MessageDocument
from app.core.db import Document, MongoDatabase
from app.core.read_policy import ReadRouter
from app.core.rollups import COLLECTION, HourTally, hour_fields, read_hours, replace_hours

RESOLUTIONS = "analytics_resolutions"


class ResolutionDocument(TypedDict):
    """The owner's answer to a visitor's question; one per question (unique `message_id`)."""

    message_id: str  # the question
    chatbot_id: str
    question: str
    question_at: datetime
    source_id: str | None  # set once the Q&A source exists
    at: datetime


class AnalyticsRepository:
    def __init__(self, reads: ReadRouter) -> None:
        self._db = reads.database("analytics")

    async def _rows(
        self, collection: str, pipeline: list[dict[str, Any]]
    ) -> AsyncIterator[Document]:
        cursor = await self._db[collection].aggregate(pipeline, batchSize=1000)
        async for row in cursor:
            yield row

    def hour_fields(
        self, chatbot_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[tuple[datetime, Document]]:
        """The counters of the bot's rollup documents for the hours starting in [start, end)."""
        return hour_fields(self._db, chatbot_id, start, end)

    async def leads(self, chatbot_id: str, start: datetime, end: datetime) -> int:
        """How many leads the bot gathered in the range (by creation)."""
        rows = self._rows(
            "leads",
            [
                {"$match": {"chatbot_id": chatbot_id, "created_at": {"$gte": start, "$lt": end}}},
                {"$count": "n"},
            ],
        )
        return next(iter([int(row["n"]) async for row in rows]), 0)

    def times(
        self, collection: str, field: str, start: datetime, end: datetime, extra: str | None = None
    ) -> AsyncIterator[Document]:
        """The `field` timestamps (and `extra`) of a collection's documents in the range."""
        projection = {"_id": 0, field: 1, **({extra: 1} if extra else {})}
        return self._rows(
            collection,
            [{"$match": {field: {"$gte": start, "$lt": end}}}, {"$project": projection}],
        )

    async def count(self, collection: str) -> int:
        rows = self._rows(collection, [{"$count": "n"}])
        return next(iter([int(row["n"]) async for row in rows]), 0)


EVERY_HOUR = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


class RollupRepository:
    """On the primary: the raw documents a bot's rollups are recounted from, its rollups as a
    whole, and the owner's answers to unanswered questions."""

    def __init__(self, db: MongoDatabase) -> None:
        self._db = db
        self._resolutions = db[RESOLUTIONS]
        self._messages = db["messages"]

    async def chatbot_ids(self) -> list[str]:
        """Every chatbot that has conversations or rollups."""
        found: set[str] = set()
        for collection in ("conversations", COLLECTION):
            cursor = await self._db[collection].aggregate(
                [{"$group": {"_id": "$chatbot_id"}}], batchSize=1000
            )
            found |= {str(row["_id"]) async for row in cursor if row["_id"]}
        return sorted(found)

    def conversations(self, chatbot_id: str) -> AsyncIterator[ConversationDocument]:
        found = self._db["conversations"].find({"chatbot_id": chatbot_id}, {"_id": 0})
        return cast("AsyncIterator[ConversationDocument]", found.batch_size(1000))

    def messages(self, chatbot_id: str) -> AsyncIterator[MessageDocument]:
        """The bot's messages by conversation, oldest first in each (a stream, not a list)."""
        fields = {"_id": 0, "citations": 0, "retrieval_scores": 0, "tokens": 0}
        found = self._messages.find({"chatbot_id": chatbot_id}, fields)
        ordered = found.sort([("conversation_id", 1), ("timestamp", 1)])
        return cast("AsyncIterator[MessageDocument]", ordered.batch_size(1000))

    def resolutions(self, chatbot_id: str) -> AsyncIterator[ResolutionDocument]:
        found = self._resolutions.find({"chatbot_id": chatbot_id}, {"_id": 0})
        return cast("AsyncIterator[ResolutionDocument]", found.batch_size(1000))

    async def hours(self, chatbot_id: str) -> dict[datetime, HourTally]:
        return await read_hours(self._db, chatbot_id, *EVERY_HOUR)

    async def replace_hours(self, chatbot_id: str, hours: dict[datetime, HourTally]) -> int:
        return await replace_hours(self._db, chatbot_id, hours)

    async def claim_resolution(self, resolution: ResolutionDocument) -> ResolutionDocument | None:
        """Stores the resolution; returns the existing one instead if the question has one."""
        try:
            await self._resolutions.insert_one(cast("Document", dict(resolution)))
        except DuplicateKeyError:
            found = await self._resolutions.find_one(
                {"message_id": resolution["message_id"]}, {"_id": 0}
            )
            return cast("ResolutionDocument | None", found)
        return None

    async def release_resolution(self, message_id: str) -> None:
        """Forgets a resolution whose Q&A source could not be created."""
        await self._resolutions.delete_one({"message_id": message_id, "source_id": None})

    async def resolved(
        self, chatbot_id: str, message_id: str, source_id: str, at: datetime
    ) -> None:
        """Records the Q&A source on the resolution and marks the question resolved."""
        await self._resolutions.update_one(
            {"message_id": message_id}, {"$set": {"source_id": source_id}}
        )
        await self._messages.update_one(
            {"id": message_id, "chatbot_id": chatbot_id},
            {"$set": {"resolved": {"source_id": source_id, "at": at}}},
        )
