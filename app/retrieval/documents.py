"""What the chunks collection stores: the ingestion pipeline writes it, retrieval searches it."""

from datetime import datetime
from typing import TypedDict

SEARCHED_FIELDS = ("id", "source_id", "position", "title", "url", "heading", "content")


class SearchedChunk(TypedDict):
    """The fields retrieval reads (`ChunkRepository.for_chatbot`)."""

    id: str
    source_id: str
    position: int
    title: str
    url: str | None
    heading: str
    content: str


class ChunkDocument(SearchedChunk):
    """A stored chunk, as the ingestion pipeline writes it."""

    chatbot_id: str
    created_at: datetime


def searched(chunk: ChunkDocument) -> SearchedChunk:
    """The fields of a stored chunk that retrieval reads."""
    return {
        "id": chunk["id"],
        "source_id": chunk["source_id"],
        "position": chunk["position"],
        "title": chunk["title"],
        "url": chunk["url"],
        "heading": chunk["heading"],
        "content": chunk["content"],
    }
