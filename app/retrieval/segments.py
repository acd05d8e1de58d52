"""Index segments: a source's chunks as the ingestion pipeline leaves them ready to search
(postings, static-model vectors, the endpoint's vectors when configured, and the chunks'
fields), stored in MongoDB so that no question pays an index build: a process loads the
segments it does not hold yet and searches them side by side."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError

from app.core.db import Document
from app.core.resources import Resources
from app.core.security import new_id
from app.retrieval.documents import SearchedChunk
from app.retrieval.lexical import Postings
from app.retrieval.repository import ChunkRepository
from app.retrieval.static_model import static_embedder

PART_SIZE = 2_000  # chunks per segment document: well under MongoDB's 16 MB
_CACHE_KEY = "botsmith:segment:"
_CACHE_SECONDS = 7 * 24 * 3600  # a build never changes; unused ones expire

Matrix = npt.NDArray[np.float32]
Half = npt.NDArray[np.float16]


def text_for_vectors(chunk: SearchedChunk) -> str:
    """What a chunk's vector is computed from: its place in the document, then its text."""
    return f"{chunk.get('title', '')}. {chunk.get('heading', '')}. {chunk['content']}"


class SegmentDocument(TypedDict):
    """What a process lists to know whether the segments it holds are current."""

    id: str  # "<source_id>:<part>"
    build: str  # new at every build; the data document of the same build holds the contents
    chatbot_id: str
    source_id: str
    part: int
    chunk_count: int


class SegmentDataDocument(TypedDict):
    _id: str  # the build: read by _id, the one lookup every MongoDB-compatible server indexes
    chatbot_id: str
    source_id: str
    data: bytes  # a JSON header (chunks, vocabulary, array layout), then the arrays


@dataclass(frozen=True)
class Segment:
    key: str
    build: str
    chunks: list[SearchedChunk]
    postings: Postings
    vectors: Half  # unit rows, kept in half precision until laid end to end
    endpoint_vectors: Half | None  # unit rows

    @classmethod
    def build_from(
        cls, key: str, chunks: list[SearchedChunk], endpoint: list[list[float]] | None = None
    ) -> "Segment":
        """Indexes chunks (CPU-bound: run it in a thread)."""
        postings = Postings.build(
            [(f"{c.get('title', '')} {c.get('heading', '')}", c["content"]) for c in chunks]
        )
        vectors = static_embedder().embed([text_for_vectors(chunk) for chunk in chunks])
        endpoint_vectors = _unit(np.asarray(endpoint, dtype=np.float32)) if endpoint else None
        return cls(
            key,
            new_id(),
            chunks,
            postings,
            vectors.astype(np.float16),
            None if endpoint_vectors is None else endpoint_vectors.astype(np.float16),
        )

    def to_bytes(self) -> bytes:
        p = self.postings
        arrays: dict[str, npt.NDArray[Any]] = {
            "starts": p.starts,
            "postings": p.chunks,
            "counts": p.counts,
            "lengths": p.lengths,
            "vectors": self.vectors,
        }
        if self.endpoint_vectors is not None:
            arrays["endpoint_vectors"] = self.endpoint_vectors
        layout: dict[str, list[object]] = {}
        offset = 0
        for name, array in arrays.items():
            layout[name] = [array.dtype.str, list(array.shape), offset]
            offset += array.nbytes
        header = json.dumps(
            {"key": self.key, "chunks": self.chunks, "terms": list(p.vocabulary), "arrays": layout}
        ).encode()
        return b"".join(
            [len(header).to_bytes(8, "little"), header, *(a.tobytes() for a in arrays.values())]
        )

    @classmethod
    def from_bytes(cls, build: str, data: bytes) -> "Segment":
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        body = memoryview(data)[8 + size :]
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, (dtype, shape, offset) in header["arrays"].items():
            count = int(np.prod(shape))
            arrays[name] = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(
                shape
            )
        postings = Postings(
            {term: position for position, term in enumerate(header["terms"])},
            arrays["starts"],
            arrays["postings"],
            arrays["counts"],
            arrays["lengths"],
        )
        endpoint = arrays.get("endpoint_vectors")
        return cls(
            header["key"],
            build,
            header["chunks"],
            postings,
            arrays["vectors"],
            endpoint,
        )


def _unit(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def segments_for_source(
    source_id: str, chunks: list[SearchedChunk], endpoint: list[list[float]] | None
) -> list[Segment]:
    """A source's segments, PART_SIZE chunks each (CPU-bound: run it in a thread)."""
    return [
        Segment.build_from(
            f"{source_id}:{start // PART_SIZE}",
            chunks[start : start + PART_SIZE],
            endpoint[start : start + PART_SIZE] if endpoint else None,
        )
        for start in range(0, len(chunks), PART_SIZE)
    ]


def segments_of_chunks(chunks: list[SearchedChunk]) -> list[Segment]:
    """Segments for chunks stored without them, a source at a time (CPU-bound: run it in a
    thread); their vectors come from the static model only."""
    by_source: dict[str, list[SearchedChunk]] = {}
    for chunk in chunks:
        by_source.setdefault(chunk["source_id"], []).append(chunk)
    return [
        segment
        for source_id, found in by_source.items()
        for segment in segments_for_source(source_id, found, None)
    ]


class SegmentRepository:
    """The only code that touches the index_segments and index_segment_data collections, and
    their copy in Redis: a segment's data is read from Redis when it is there (one key lookup,
    whatever the size of the collection), from MongoDB otherwise."""

    def __init__(self, resources: Resources) -> None:
        self._segments = resources.db["index_segments"]
        self._data = resources.db["index_segment_data"]
        self._redis = resources.redis
        self._circuit = resources.redis_circuit

    async def replace_for_source(
        self, chatbot_id: str, source_id: str, segments: list[Segment]
    ) -> None:
        """The data first, then the list: a process that sees a build can load it."""
        data: list[SegmentDataDocument] = [
            {
                "_id": segment.build,
                "chatbot_id": chatbot_id,
                "source_id": source_id,
                "data": segment.to_bytes(),
            }
            for segment in segments
        ]
        listed: list[SegmentDocument] = [
            {
                "id": segment.key,
                "build": segment.build,
                "chatbot_id": chatbot_id,
                "source_id": source_id,
                "part": part,
                "chunk_count": len(segment.chunks),
            }
            for part, segment in enumerate(segments)
        ]
        replaced = await self._builds_of({"source_id": source_id})
        if data:
            await self._data.insert_many(cast("list[Document]", data), ordered=False)
            for document in data:
                await self._cache(document["_id"], document["data"])
        await self._segments.delete_many({"source_id": source_id})
        if listed:
            await self._segments.insert_many(cast("list[Document]", listed), ordered=False)
        await self._delete_data(replaced)

    async def delete_for_source(self, source_id: str) -> None:
        replaced = await self._builds_of({"source_id": source_id})
        await self._segments.delete_many({"source_id": source_id})
        await self._delete_data(replaced)

    async def _builds_of(self, query: dict[str, str]) -> list[str]:
        found = self._segments.find(query, {"_id": 0, "build": 1})
        return [document["build"] async for document in found]

    async def _delete_data(self, builds: list[str]) -> None:
        # By _id, one at a time: the lookup every MongoDB-compatible server serves from an index.
        for build in builds:
            await self._data.delete_one({"_id": build})

    async def builds(self, chatbot_id: str) -> dict[str, str]:
        """The bot's segments: key → build."""
        found = self._segments.find({"chatbot_id": chatbot_id}, {"_id": 0, "id": 1, "build": 1})
        return {document["id"]: document["build"] async for document in found}

    async def load(self, builds: list[str]) -> list[Segment]:
        """The segments of these builds (one gone meanwhile is left out)."""
        found = await asyncio.gather(*(self._data_of(build) for build in builds))
        return [Segment.from_bytes(b, data) for b, data in zip(builds, found, strict=True) if data]

    async def _data_of(self, build: str) -> bytes | None:
        data = await self._cached(build)
        if data is None:
            document = await self._data.find_one({"_id": build})
            data = None if document is None else bytes(document["data"])
            if data is not None:
                await self._cache(build, data)
        return data

    async def _cached(self, build: str) -> bytes | None:
        if self._redis is None or self._circuit.is_open:
            return None
        try:
            data = await self._redis.get(_CACHE_KEY + build)
        except RedisError as error:
            self._circuit.record_failure("index segments", error)
            return None
        return None if data is None else bytes(data)

    async def _cache(self, build: str, data: bytes) -> None:
        if self._redis is None or self._circuit.is_open:
            return
        try:
            await self._redis.set(_CACHE_KEY + build, data, ex=_CACHE_SECONDS)
        except RedisError as error:  # a full Redis only costs the MongoDB read
            self._circuit.record_failure("index segments", error)

    async def sources_with_segments(self) -> set[str]:
        return {str(value) for value in await self._segments.distinct("source_id")}


async def backfill_segments(segments: SegmentRepository, chunks: ChunkRepository) -> int:
    """Builds the segments of sources whose chunks were stored before segments were (run by
    the worker at start); the number of sources indexed."""
    indexed = await segments.sources_with_segments()
    missing = sorted(await chunks.source_ids() - indexed)
    for source_id in missing:
        chatbot_id = await chunks.chatbot_of(source_id)
        if chatbot_id is None:
            continue  # deleted meanwhile
        found = await chunks.for_source(source_id)
        built = await asyncio.to_thread(segments_for_source, source_id, found, None)
        await segments.replace_for_source(chatbot_id, source_id, built)
    return len(missing)
