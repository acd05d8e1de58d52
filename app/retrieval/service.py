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
from app.core.resources import Resources
from app.retrieval.analysis import query_terms, split_sentences
from app.retrieval.documents import SearchedChunk
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.retrieval.lexical import score
from app.retrieval.repository import ChunkRepository
from app.retrieval.schemas import RetrievedChunk
from app.retrieval.segments import Segment, SegmentRepository, segments_of_chunks
from app.retrieval.static_model import static_embedder

logger = logging.getLogger(__name__)
RRF_K = 60  # the usual constant of reciprocal rank fusion
CANDIDATES = 50

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class KnowledgeIndex:
    """A bot's segments, searched side by side; the chunks and vectors laid end to end."""

    version: int
    segments: tuple[Segment, ...]
    chunks: list[SearchedChunk]
    vectors: Matrix  # unit rows from the static model
    endpoint_vectors: Matrix | None  # unit rows from the embeddings endpoint, when all have them

    @classmethod
    def of(cls, version: int, segments: list[Segment]) -> "KnowledgeIndex":
        ordered = tuple(sorted(segments, key=lambda segment: segment.key))
        chunks = [chunk for segment in ordered for chunk in segment.chunks]
        if not ordered:
            return cls(version, (), [], np.zeros((0, 1), dtype=np.float32), None)
        vectors = np.concatenate([segment.vectors for segment in ordered], dtype=np.float32)
        endpoint = [segment.endpoint_vectors for segment in ordered]
        shapes = {matrix.shape[1] for matrix in endpoint if matrix is not None}
        endpoint_vectors = (
            np.concatenate([m for m in endpoint if m is not None], dtype=np.float32)
            if len(shapes) == 1 and all(m is not None for m in endpoint)
            else None
        )
        return cls(version, ordered, chunks, vectors, endpoint_vectors)


def relevance(coverage: float, similarity: float, sentence_similarity: float) -> float:
    """The estimated chance, 0..1, that a passage answers the question, from the share of the
    question's content terms it holds (IDF-weighted), its vector similarity to the question,
    and the similarity of its closest sentence. A logistic model fitted on the public
    benchmark, each class weighted equally (bench/README.md, `make bench-rag`)."""
    z = (
        COVERAGE_WEIGHT * coverage
        + SIMILARITY_WEIGHT * similarity
        + SENTENCE_WEIGHT * sentence_similarity
        + BIAS
    )
    return 1 / (1 + math.exp(-z))


COVERAGE_WEIGHT = 1.69
SIMILARITY_WEIGHT = 4.58
SENTENCE_WEIGHT = 1.95
BIAS = -4.19


def _closest_sentences(question: Matrix, passages: list[str]) -> list[float]:
    """Per passage, the similarity of its sentence closest to the question."""
    groups = [split_sentences(text) or [text] for text in passages]
    vectors = static_embedder().embed([s for group in groups for s in group])
    closeness = vectors @ question
    best, start = [], 0
    for group in groups:
        best.append(float(closeness[start : start + len(group)].max()))
        start += len(group)
    return best


class RetrievalIndexes:
    """At most `capacity` bots' indexes per process, least recently used dropped first. When a
    bot's knowledge version moves on, only the segments that changed are loaded."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._built: OrderedDict[str, KnowledgeIndex] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(
        self, chatbot: ChatbotDocument, segments: SegmentRepository, chunks: ChunkRepository
    ) -> KnowledgeIndex:
        chatbot_id, version = chatbot["id"], chatbot.get("knowledge_version", 0)
        built = self._built.get(chatbot_id)
        if built is not None and built.version == version:
            self._built.move_to_end(chatbot_id)
            return built
        lock = self._locks.setdefault(chatbot_id, asyncio.Lock())
        async with lock:  # one load per bot at a time
            built = self._built.get(chatbot_id)
            if built is None or built.version != version:
                parts = await self._segments(chatbot_id, built, segments, chunks)
                # Laying a large bot's vectors end to end takes a while: off the event loop.
                built = await asyncio.to_thread(KnowledgeIndex.of, version, parts)
                self._built[chatbot_id] = built
                while len(self._built) > self._capacity:
                    evicted, _ = self._built.popitem(last=False)
                    self._locks.pop(evicted, None)
        return built

    @staticmethod
    async def _segments(
        chatbot_id: str,
        held: KnowledgeIndex | None,
        segments: SegmentRepository,
        chunks: ChunkRepository,
    ) -> list[Segment]:
        builds = await segments.builds(chatbot_id)
        if not builds:
            # Chunks stored before segments were (the worker backfills them at start).
            found = await chunks.for_chatbot(chatbot_id)
            return await asyncio.to_thread(segments_of_chunks, found)
        current = {s.build for s in held.segments} if held is not None else set()
        kept = [s for s in held.segments if builds.get(s.key) == s.build] if held else []
        missing = [build for build in builds.values() if build not in current]
        return kept + (await segments.load(missing) if missing else [])


class RetrievalService:
    @classmethod
    def over(cls, resources: Resources, indexes: RetrievalIndexes) -> "RetrievalService":
        """Retrieval over a process's clients, with its own `indexes`."""
        return cls(
            SegmentRepository(resources),
            ChunkRepository(resources.db),
            indexes,
            EmbeddingsClient.configured(resources.http, resources.settings),
        )

    def __init__(
        self,
        segments: SegmentRepository,
        chunks: ChunkRepository,
        indexes: RetrievalIndexes,
        embeddings: EmbeddingsClient | None = None,
    ) -> None:
        self._segments = segments
        self._chunks = chunks
        self._indexes = indexes
        self._embeddings = embeddings

    async def retrieve(
        self, chatbot: ChatbotDocument, query: str, top_k: int | None = None
    ) -> list[RetrievedChunk]:
        index = await self._indexes.get(chatbot, self._segments, self._chunks)
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


def _neighbour(chunks: list[SearchedChunk], position: int, step: int) -> str:
    """The text of the chunk next to `position` in the same source, or ""."""
    other = position + step
    if not 0 <= other < len(chunks):
        return ""
    chunk, near = chunks[position], chunks[other]
    adjacent = near["position"] == chunk["position"] + step
    return near["content"] if near["source_id"] == chunk["source_id"] and adjacent else ""


def rank(
    index: KnowledgeIndex, query: str, limit: int, endpoint_similarity: Matrix | None = None
) -> list[RetrievedChunk]:
    """The `limit` best chunks for the query, best first."""
    if not index.chunks:
        return []
    lexical = score([segment.postings for segment in index.segments], query_terms(query))
    question = static_embedder().embed([query])[0]
    similarity = (
        endpoint_similarity if endpoint_similarity is not None else index.vectors @ question
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
    chunks = [index.chunks[p] for p in order]
    closest = _closest_sentences(question, [chunk["content"] for chunk in chunks])
    return [
        RetrievedChunk(
            chunk_id=chunk["id"],
            source_id=chunk["source_id"],
            title=chunk.get("title", ""),
            url=chunk.get("url"),
            heading=chunk.get("heading", ""),
            content=chunk["content"],
            before=_neighbour(index.chunks, p, -1),
            after=_neighbour(index.chunks, p, 1),
            score=round(float(lexical.bm25[p]), 4),
            relevance=round(
                relevance(float(lexical.coverage[p]), float(similarity[p]), sentence), 4
            ),
        )
        for p, chunk, sentence in zip(order, chunks, closest, strict=True)
    ]
