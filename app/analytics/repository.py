"""Analytics reads: aggregation pipelines that FerretDB and MongoDB both run ($match, $group with
$sum, $sort, $project), on the `analytics` read preference, served by the message and
conversation indexes. Bucketing by time zone, averages and percentiles happen in the service."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from app.chat.documents import FeedbackDocument
from app.chat.schemas import MessageRole
from app.core.db import Document
from app.core.read_policy import ReadRouter

MESSAGE_FIELDS = {
    "_id": 0,
    "timestamp": 1,
    "role": 1,
    "conversation_id": 1,
    "answered": 1,
    "latency_ms": 1,
    "feedback": 1,
    "content": 1,
}


class MessageRow(TypedDict):
    """The fields of a message analytics reads (MESSAGE_FIELDS); questions lack the last three."""

    timestamp: datetime
    role: MessageRole
    conversation_id: str
    content: str
    answered: NotRequired[bool]
    latency_ms: NotRequired[int]
    feedback: NotRequired[FeedbackDocument]


class ConversationRow(TypedDict):
    id: str
    started_at: datetime
    session_id: str | None


class AnalyticsRepository:
    def __init__(self, reads: ReadRouter) -> None:
        self._db = reads.database("analytics")

    async def _rows(
        self, collection: str, pipeline: list[dict[str, Any]]
    ) -> AsyncIterator[Document]:
        cursor = await self._db[collection].aggregate(pipeline, batchSize=1000)
        async for row in cursor:
            yield row

    def messages(
        self, chatbot_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[MessageRow]:
        rows = self._rows(
            "messages",
            [
                {"$match": {"chatbot_id": chatbot_id, "timestamp": {"$gte": start, "$lt": end}}},
                {"$project": MESSAGE_FIELDS},
            ],
        )
        return cast("AsyncIterator[MessageRow]", rows)

    def conversations(
        self, chatbot_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[ConversationRow]:
        rows = self._rows(
            "conversations",
            [
                {"$match": {"chatbot_id": chatbot_id, "started_at": {"$gte": start, "$lt": end}}},
                {"$project": {"_id": 0, "id": 1, "started_at": 1, "session_id": 1}},
            ],
        )
        return cast("AsyncIterator[ConversationRow]", rows)

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
