"""What the sources collection stores: a source, its content and its processing state."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.sources.schemas import CrawlMode, SourceKind, SourceStatus


class SourceFileDocument(TypedDict):
    filename: str
    media_type: str
    size: int
    data: NotRequired[bytes]  # stored as BSON binary; listings project it out


class CrawlDocument(TypedDict):
    url: str
    mode: CrawlMode
    max_depth: int
    max_pages: int
    include: list[str]
    exclude: list[str]


class ProgressDocument(TypedDict):
    percent: int
    chunks: int
    pages: int


class SourceDocument(TypedDict):
    """A source holds its content in one of `text` (text and Q&A), `file` or `crawl` (URL)."""

    id: str
    chatbot_id: str
    user_id: str
    kind: SourceKind
    title: str
    text: str | None
    file: SourceFileDocument | None
    crawl: CrawlDocument | None
    content_hash: str
    processed_hash: str | None  # the content_hash of the chunks in place
    status: SourceStatus
    error: str | None
    progress: ProgressDocument
    char_count: int | None  # known once processed (at once for text)
    chunk_count: int
    created_at: datetime
    updated_at: datetime
