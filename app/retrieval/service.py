"""Retrieval over a chatbot's chunks: BM25 indexes built on first use, kept per process, and
rebuilt when the bot's knowledge_version changes (a write anywhere bumps it)."""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from app.core.db import Document
from app.retrieval.bm25 import Bm25Index
from app.retrieval.schemas import RetrievedChunk
from app.sources.repository import SourceRepository


@dataclass(frozen=True)
class _Built:
    version: int
    index: Bm25Index
    chunks: list[Document]


class RetrievalIndexes:
    """At most `capacity` bots' indexes per process, least recently used dropped first."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._built: OrderedDict[str, _Built] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, chatbot: Document, sources: SourceRepository) -> _Built:
        chatbot_id, version = chatbot["id"], chatbot.get("knowledge_version", 0)
        built = self._built.get(chatbot_id)
        if built is not None and built.version == version:
            self._built.move_to_end(chatbot_id)
            return built
        lock = self._locks.setdefault(chatbot_id, asyncio.Lock())
        async with lock:  # one build per bot at a time
            built = self._built.get(chatbot_id)
            if built is None or built.version != version:
                chunks = await sources.chunks_for_chatbot(chatbot_id)
                texts = [
                    f"{c.get('title', '')} {c.get('heading', '')} {c['content']}" for c in chunks
                ]
                index = await asyncio.to_thread(Bm25Index, texts)
                built = _Built(version, index, chunks)
                self._built[chatbot_id] = built
                while len(self._built) > self._capacity:
                    evicted, _ = self._built.popitem(last=False)
                    self._locks.pop(evicted, None)
        return built


class RetrievalService:
    def __init__(self, sources: SourceRepository, indexes: RetrievalIndexes) -> None:
        self._sources = sources
        self._indexes = indexes

    async def retrieve(
        self, chatbot: Document, query: str, top_k: int | None = None
    ) -> list[RetrievedChunk]:
        built = await self._indexes.get(chatbot, self._sources)
        limit = top_k or chatbot["retrieval"]["top_k"]
        results = []
        for hit in built.index.search(query, limit):
            chunk = built.chunks[hit.index]
            results.append(
                RetrievedChunk(
                    chunk_id=chunk["id"],
                    source_id=chunk["source_id"],
                    title=chunk.get("title", ""),
                    url=chunk.get("url"),
                    heading=chunk.get("heading", ""),
                    content=chunk["content"],
                    score=round(hit.score, 4),
                    relevance=round(hit.coverage, 4),
                )
            )
        return results
