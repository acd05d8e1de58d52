"""Knowledge sources: request and response models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel


class SourceKind(StrEnum):
    TEXT = "text"
    QA = "qa"
    FILE = "file"


class SourceStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class TextSourceCreate(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(min_length=1, max_length=1_000_000)]


class QuestionAnswer(RequestModel):
    question: Annotated[str, Field(min_length=1, max_length=1000)]
    answer: Annotated[str, Field(min_length=1, max_length=10_000)]


class QASourceCreate(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=200)] = "Questions and answers"
    pairs: Annotated[list[QuestionAnswer], Field(min_length=1, max_length=1000)]


class Progress(BaseModel):
    percent: int = 0
    chunks: int = 0


class SourceOut(BaseModel):
    id: str
    chatbot_id: str
    kind: SourceKind
    title: str
    filename: str | None = None
    status: SourceStatus
    error: str | None = None
    progress: Progress
    char_count: int | None = None
    chunk_count: int = 0
    created_at: datetime
    updated_at: datetime
