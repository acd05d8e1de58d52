"""Retrieval over a chatbot's chunks: BM25 and vector similarity (the offline static model, or
an OpenAI-compatible embeddings endpoint when configured), fused by reciprocal rank. Each hit's
relevance is a calibrated estimate that the passage answers the question (see `relevance`)."""

import asyncio
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.chatbots.documents import ChatbotDocument
from app.retrieval.analysis import query_terms
from app.retrieval.documents import SearchedChunk
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.retrieval.lexical import LexicalIndex
from app.retrieval.repository import ChunkRepository
from app.retrieval.schemas import RetrievedChunk
from app.retrieval.static_model import static_embedder

logger = logging.getLogger(__name__)
RRF_K = 60  # the usual constant of reciprocal rank fusion
CANDIDATES = 50

Matrix = npt.NDArray[np.float32]


def chunk_text_for_vectors(chunk: SearchedChunk) -> str:
    """What a chunk's vector is computed from: its place in the document, then its text."""
    return f"{chunk.get('title', '')}. {chunk.get('heading', '')}. {chunk['content']}"


@dataclass(frozen=True)
class KnowledgeIndex:
    version: int
    chunks: list[SearchedChunk]
    lexical: LexicalIndex
    vectors: Matrix  # unit rows from the static model
    endpoint_vectors: Matrix | None  # unit rows from the embeddings endpoint, when it has them

    @classmethod
    def build(cls, version: int, chunks: list[SearchedChunk]) -> "KnowledgeIndex":
        lexical = LexicalIndex.build(
            [(f"{c.get('title', '')} {c.get('heading', '')}", c["content"]) for c in chunks]
        )
        return cls(version, chunks, lexical, _static_vectors(chunks), _endpoint_vectors(chunks))


def _static_vectors(chunks: list[SearchedChunk]) -> Matrix:
    embedder = static_embedder()
    matrix = np.zeros((len(chunks), embedder.dimensions), dtype=np.float32)
    missing = []
    for row, chunk in enumerate(chunks):
        stored = chunk.pop("vector", None)  # kept once, in the matrix
        if stored is not None and len(stored) == embedder.dimensions * 2:
            matrix[row] = np.frombuffer(stored, dtype=np.float16)
        else:
            missing.append(row)
    if missing:  # chunks stored before vectors were
        matrix[missing] = embedder.embed([chunk_text_for_vectors(chunks[r]) for r in missing])
    return matrix


def _endpoint_vectors(chunks: list[SearchedChunk]) -> Matrix | None:
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


def relevance(coverage: float, similarity: float) -> float:
    """The estimated chance, 0..1, that a passage answers the question, from the share of the
    question's content terms it holds (IDF-weighted) and its vector similarity to the
    question. Calibrated on the public benchmark (bench/README.md, `make bench-rag`)."""
    return 1 / (1 + math.exp(-(COVERAGE_WEIGHT * coverage + SIMILARITY_WEIGHT * similarity + BIAS)))


COVERAGE_WEIGHT = 1.94
SIMILARITY_WEIGHT = 5.76
BIAS = -3.82


class RetrievalIndexes:
    """At most `capacity` bots' indexes per process, least recently used dropped first."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._built: OrderedDict[str, KnowledgeIndex] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, chatbot: ChatbotDocument, chunks: ChunkRepository, with_embeddings: bool
    ) -> KnowledgeIndex:
        chatbot_id, version = chatbot["id"], chatbot.get("knowledge_version", 0)
        built = self._built.get(chatbot_id)
        if built is not None and built.version == version:
            self._built.move_to_end(chatbot_id)
            return built
        lock = self._locks.setdefault(chatbot_id, asyncio.Lock())
        async with lock:  # one build per bot at a time
            built = self._built.get(chatbot_id)
            if built is None or built.version != version:
                found = await chunks.for_chatbot(chatbot_id, with_embeddings)
                built = await asyncio.to_thread(KnowledgeIndex.build, version, found)
                self._built[chatbot_id] = built
                while len(self._built) > self._capacity:
                    evicted, _ = self._built.popitem(last=False)
                    self._locks.pop(evicted, None)
        return built


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
        index = await self._indexes.get(chatbot, self._chunks, self._embeddings is not None)
        limit = top_k or chatbot["retrieval"]["top_k"]
        return rank(index, query, limit, await self._endpoint_similarity(index, query))

    async def _endpoint_similarity(self, index: KnowledgeIndex, query: str) -> Matrix | None:
        if self._embeddings is None or index.endpoint_vectors is None:
            return None
        try:
            vector = np.asarray((await self._embeddings.embed([query]))[0], dtype=np.float32)
        except EmbeddingsError as error:
            logger.warning("query not embedded by the endpoint, static vectors only: %s", error)
            return None
        norm = float(np.linalg.norm(vector))
        if norm == 0 or vector.shape[0] != index.endpoint_vectors.shape[1]:
            return None
        result: Matrix = index.endpoint_vectors @ (vector / norm)
        return result


def rank(
    index: KnowledgeIndex, query: str, limit: int, endpoint_similarity: Matrix | None = None
) -> list[RetrievedChunk]:
    """The `limit` best chunks for the query, best first."""
    if not index.chunks:
        return []
    lexical = index.lexical.score(query_terms(query))
    similarity = (
        endpoint_similarity
        if endpoint_similarity is not None
        else index.vectors @ static_embedder().embed([query])[0]
    )
    candidates = max(limit, CANDIDATES)
    fused = np.zeros(len(index.chunks), dtype=np.float64)
    by_words = np.argsort(-lexical.bm25, kind="stable")[:candidates]
    by_words = by_words[lexical.bm25[by_words] > 0]
    fused[by_words] += 1 / (RRF_K + 1 + np.arange(len(by_words)))
    by_meaning = np.argsort(-similarity, kind="stable")[:candidates]
    by_meaning = by_meaning[similarity[by_meaning] > 0]
    fused[by_meaning] += 1 / (RRF_K + 1 + np.arange(len(by_meaning)))
    order = [int(p) for p in np.argsort(-fused, kind="stable")[:limit] if fused[p] > 0]
    return [
        RetrievedChunk(
            chunk_id=index.chunks[p]["id"],
            source_id=index.chunks[p]["source_id"],
            title=index.chunks[p].get("title", ""),
            url=index.chunks[p].get("url"),
            heading=index.chunks[p].get("heading", ""),
            content=index.chunks[p]["content"],
            score=round(float(lexical.bm25[p]), 4),
            relevance=round(relevance(float(lexical.coverage[p]), float(similarity[p])), 4),
        )
        for p in order
    ]
