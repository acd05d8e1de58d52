"""What the sources collection stores: a source, its content and its processing state."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.sources.schemas import CrawlMode, RefreshOutcome, RefreshSchedule, SourceKind, SourceStatus


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


class FetchedPageDocument(TypedDict):
    """A page of a URL source as last fetched: what a conditional request sends back
    (`etag`, `last_modified`), and what tells whether its text changed (`digest`)."""

    url: str  # as requested
    final_url: str  # after redirects: the `url` of its chunks
    title: str
    etag: str | None
    last_modified: str | None
    digest: str  # sha256 of the page's text
    chars: int


class LastRefreshDocument(TypedDict):
    outcome: RefreshOutcome
    reason: str | None


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
    # URL sources; absent on sources from before refresh schedules.
    refresh_schedule: NotRequired[RefreshSchedule | None]  # None: the chatbot's default
    next_refresh_at: NotRequired[datetime | None]  # None: not scheduled
    last_refreshed_at: NotRequired[datetime | None]
    last_refresh_outcome: NotRequired[LastRefreshDocument | None]
    fetched_pages: NotRequired[list[FetchedPageDocument]]


class SourceSettingsDocument(TypedDict):
    """A chatbot's defaults for its sources (absent: the defaults of `SourceSettings`)."""

    chatbot_id: str
    refresh_schedule: RefreshSchedule
    updated_at: datetime
