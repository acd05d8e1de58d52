"""What the chunks collection stores: the ingestion pipeline writes it, retrieval searches it."""

from datetime import datetime
from typing import NotRequired, TypedDict


class SearchedChunk(TypedDict):
    """The fields retrieval reads (`ChunkRepository.for_chatbot`)."""

    id: str
    source_id: str
    position: int
    title: str
    url: str | None
    heading: str
    content: str
    vector: NotRequired[bytes]  # the static model's vector, float16
    embedding: NotRequired[list[float]]  # only when an embeddings endpoint is configured


class ChunkDocument(SearchedChunk):
    """A stored chunk, as the ingestion pipeline writes it."""

    chatbot_id: str
    created_at: datetime
