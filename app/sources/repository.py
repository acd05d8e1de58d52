"""The only code that touches the sources and chunks collections."""

from datetime import datetime
from typing import Any

from app.core.db import Document, MongoDatabase
from app.sources.schemas import SourceStatus

_NO_DATA = {"_id": 0, "file.data": 0}


class SourceRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._sources = db["sources"]
        self._chunks = db["chunks"]

    async def insert(self, source: Document) -> None:
        await self._sources.insert_one(source)

    async def get(self, chatbot_id: str, source_id: str) -> Document | None:
        return await self._sources.find_one({"id": source_id, "chatbot_id": chatbot_id}, _NO_DATA)

    async def get_with_data(self, source_id: str) -> Document | None:
        return await self._sources.find_one({"id": source_id}, {"_id": 0})

    async def list_for_chatbot(self, chatbot_id: str) -> list[Document]:
        found = self._sources.find({"chatbot_id": chatbot_id}, _NO_DATA)
        return await found.sort([("created_at", -1), ("id", -1)]).to_list()

    async def count_for_chatbot(self, chatbot_id: str) -> int:
        return await self._sources.count_documents({"chatbot_id": chatbot_id})

    async def chars_for_chatbot(self, chatbot_id: str, excluding: str | None = None) -> int:
        found = self._sources.find(
            {"chatbot_id": chatbot_id, "id": {"$ne": excluding}}, {"_id": 0, "char_count": 1}
        )
        return sum(source.get("char_count") or 0 for source in await found.to_list())

    async def update(self, source_id: str, fields: dict[str, Any]) -> None:
        await self._sources.update_one({"id": source_id}, {"$set": fields})

    async def set_status(
        self, source_id: str, status: SourceStatus, now: datetime, **fields: Any
    ) -> None:
        await self.update(source_id, {"status": status.value, "updated_at": now, **fields})

    async def replace_chunks(self, source_id: str, chunks: list[Document]) -> None:
        """The source's chunks become exactly these: a retried job never duplicates any."""
        await self._chunks.delete_many({"source_id": source_id})
        if chunks:
            await self._chunks.insert_many(chunks, ordered=False)

    async def delete(self, source_id: str) -> None:
        await self._chunks.delete_many({"source_id": source_id})
        await self._sources.delete_one({"id": source_id})

    async def chunks_for_chatbot(self, chatbot_id: str, with_embeddings: bool) -> list[Document]:
        fields = ["id", "source_id", "position", "title", "url", "heading", "content"]
        projection = {"_id": 0, **dict.fromkeys(fields, 1)}
        if with_embeddings:
            projection["embedding"] = 1
        found = self._chunks.find({"chatbot_id": chatbot_id}, projection).sort(
            [("source_id", 1), ("position", 1)]
        )
        return await found.to_list()
