"""The only code that touches the chunks collection: what retrieval searches."""

from typing import cast

from app.core.db import Document, MongoDatabase
from app.retrieval.documents import ChunkDocument, SearchedChunk

_SEARCHED_FIELDS = ("id", "source_id", "position", "title", "url", "heading", "content", "vector")


class ChunkRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._chunks = db["chunks"]

    async def replace_for_source(self, source_id: str, chunks: list[ChunkDocument]) -> None:
        """The source's chunks become exactly these: a retried job never duplicates any."""
        await self._chunks.delete_many({"source_id": source_id})
        if chunks:
            await self._chunks.insert_many(cast("list[Document]", chunks), ordered=False)

    async def delete_for_source(self, source_id: str) -> None:
        await self._chunks.delete_many({"source_id": source_id})

    async def for_chatbot(self, chatbot_id: str, with_embeddings: bool) -> list[SearchedChunk]:
        projection = {"_id": 0, **dict.fromkeys(_SEARCHED_FIELDS, 1)}
        if with_embeddings:
            projection["embedding"] = 1
        found = self._chunks.find({"chatbot_id": chatbot_id}, projection).sort(
            [("source_id", 1), ("position", 1)]
        )
        return cast("list[SearchedChunk]", await found.to_list())
