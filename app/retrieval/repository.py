"""The only code that touches the chunks collection: what retrieval searches."""

from typing import cast

from app.core.db import Document, MongoDatabase
from app.retrieval.documents import SEARCHED_FIELDS, ChunkDocument, SearchedChunk

_PROJECTION = {"_id": 0, **dict.fromkeys(SEARCHED_FIELDS, 1)}


class ChunkRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._chunks = db["chunks"]

    async def replace_for_source(self, source_id: str, chunks: list[ChunkDocument]) -> None:
        """The source's chunks become exactly these: a retried job never duplicates any."""
        await self._chunks.delete_many({"source_id": source_id})
        if chunks:
            await self._chunks.insert_many(cast("list[Document]", chunks), ordered=False)

    async def for_source(self, source_id: str) -> list[SearchedChunk]:
        found = self._chunks.find({"source_id": source_id}, _PROJECTION).sort("position", 1)
        return cast("list[SearchedChunk]", await found.to_list())

    async def source_ids(self) -> set[str]:
        """Every source that has chunks."""
        return {str(value) for value in await self._chunks.distinct("source_id")}

    async def chatbot_of(self, source_id: str) -> str | None:
        found = await self._chunks.find_one({"source_id": source_id}, {"_id": 0, "chatbot_id": 1})
        return None if found is None else str(found["chatbot_id"])

    async def delete_for_source(self, source_id: str) -> None:
        await self._chunks.delete_many({"source_id": source_id})

    async def for_chatbot(self, chatbot_id: str) -> list[SearchedChunk]:
        found = self._chunks.find({"chatbot_id": chatbot_id}, _PROJECTION).sort(
            [("source_id", 1), ("position", 1)]
        )
        return cast("list[SearchedChunk]", await found.to_list())
