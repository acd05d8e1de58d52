"""Retrieval over a chatbot's chunks: BM25, plus embeddings when configured (hybrid, fused by
reciprocal rank). Indexes are built on first use, kept per process, and rebuilt when the bot's
knowledge_version changes (a write anywhere bumps it)."""

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.chatbots.documents import ChatbotDocument
from app.retrieval.bm25 import Bm25Index
from app.retrieval.documents import SearchedChunk
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.retrieval.repository import ChunkRepository
from app.retrieval.schemas import RetrievedChunk

logger = logging.getLogger(__name__)
RRF_K = 60  # the usual constant of reciprocal rank fusion
CANDIDATES = 50

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Built:
    version: int
    index: Bm25Index
    chunks: list[SearchedChunk]
    vectors: Matrix | None  # unit rows; zeros for chunks stored without a vector


def _unit_rows(chunks: list[SearchedChunk]) -> Matrix | None:
    dimensions = next((len(c["embedding"]) for c in chunks if c.get("embedding")), 0)
    if not dimensions:
        return None
    matrix = np.zeros((len(chunks), dimensions), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        vector = chunk.pop("embedding", None)  # kept once, in the matrix
        if vector and len(vector) == dimensions:
            matrix[row] = vector
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


class RetrievalIndexes:
    """At most `capacity` bots' indexes per process, least recently used dropped first."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._built: OrderedDict[str, _Built] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, chatbot: ChatbotDocument, chunks: ChunkRepository, with_vectors: bool
    ) -> _Built:
        chatbot_id, version = chatbot["id"], chatbot.get("knowledge_version", 0)
        built = self._built.get(chatbot_id)
        if built is not None and built.version == version:
            self._built.move_to_end(chatbot_id)
            return built
        lock = self._locks.setdefault(chatbot_id, asyncio.Lock())
        async with lock:  # one build per bot at a time
            built = self._built.get(chatbot_id)
            if built is None or built.version != version:
                found = await chunks.for_chatbot(chatbot_id, with_vectors)
                built = await asyncio.to_thread(self._build, version, found)
                self._built[chatbot_id] = built
                while len(self._built) > self._capacity:
                    evicted, _ = self._built.popitem(last=False)
                    self._locks.pop(evicted, None)
        return built

    @staticmethod
    def _build(version: int, chunks: list[SearchedChunk]) -> _Built:
        texts = [f"{c.get('title', '')} {c.get('heading', '')} {c['content']}" for c in chunks]
        return _Built(version, Bm25Index(texts), chunks, _unit_rows(chunks))


class RetrievalService:
    def __init__(
        self,
        chunks: ChunkRepository,
        indexes: RetrievalIndexes,
        embeddings: EmbeddingsClient | None = None,
    ) -> None:
        self._chunks = chunks
        self._indexes = indexes
        self._embeddings = embeddings

    async def retrieve(
        self, chatbot: ChatbotDocument, query: str, top_k: int | None = None
    ) -> list[RetrievedChunk]:
        built = await self._indexes.get(chatbot, self._chunks, self._embeddings is not None)
        limit = top_k or chatbot["retrieval"]["top_k"]
        lexical = built.index.search(query, max(limit, CANDIDATES))
        coverage = {hit.index: hit for hit in lexical}
        similarity = await self._similarity(built, query)
        fused: dict[int, float] = {}
        for rank, lexical_hit in enumerate(lexical):
            fused[lexical_hit.index] = 1 / (RRF_K + rank + 1)
        if similarity is not None:
            nearest = np.argsort(-similarity)[: max(limit, CANDIDATES)]
            for rank, position in enumerate(nearest.tolist()):
                if similarity[position] > 0:
                    fused[position] = fused.get(position, 0.0) + 1 / (RRF_K + rank + 1)
        order = sorted(fused, key=lambda position: (-fused[position], position))[:limit]
        results = []
        for position in order:
            chunk = built.chunks[position]
            hit = coverage.get(position)
            cosine = float(similarity[position]) if similarity is not None else 0.0
            results.append(
                RetrievedChunk(
                    chunk_id=chunk["id"],
                    source_id=chunk["source_id"],
                    title=chunk.get("title", ""),
                    url=chunk.get("url"),
                    heading=chunk.get("heading", ""),
                    content=chunk["content"],
                    score=round(hit.score if hit else 0.0, 4),
                    relevance=round(max(hit.coverage if hit else 0.0, cosine), 4),
                )
            )
        return results

    async def _similarity(self, built: _Built, query: str) -> npt.NDArray[np.float32] | None:
        if self._embeddings is None or built.vectors is None:
            return None
        try:
            vector = np.asarray((await self._embeddings.embed([query]))[0], dtype=np.float32)
        except EmbeddingsError as error:
            logger.warning("query not embedded, BM25 only: %s", error)
            return None
        norm = float(np.linalg.norm(vector))
        if norm == 0 or vector.shape[0] != built.vectors.shape[1]:
            return None
        result: npt.NDArray[np.float32] = built.vectors @ (vector / norm)
        return result
