"""Retrieval: request and response models."""

from typing import Annotated

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel


class RetrieveRequest(RequestModel):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    top_k: Annotated[int, Field(ge=1, le=20)] | None = None


class RetrievedChunk(BaseModel):
    chunk_id: str
    source_id: str
    title: str
    url: str | None = Field(default=None, description="The page, for URL sources")
    heading: str
    content: str
    score: float = Field(description="BM25 score")
    before: str = Field(
        default="", description="The chunk before this one in the same source, for context"
    )
    after: str = Field(
        default="", description="The chunk after this one in the same source, for context"
    )
    relevance: float = Field(
        description="Estimated chance, 0..1, that the chunk answers the question (from the "
        "share of the question's terms it holds and its vector similarity); the bot answers "
        "when the best chunk reaches its score_threshold"
    )


class RetrieveResponse(BaseModel):
    results: list[RetrievedChunk]
    above_threshold: bool = Field(
        description="Whether the best result reaches the bot's threshold (the bot would answer)"
    )
