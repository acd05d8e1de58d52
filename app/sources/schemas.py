"""Knowledge sources: request and response models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, HttpUrl

from app.core.schemas import RequestModel
from app.sources.patterns import compiled


class SourceKind(StrEnum):
    TEXT = "text"
    QA = "qa"
    FILE = "file"
    URL = "url"


class SourceStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class RefreshSchedule(StrEnum):
    """How often a URL source is fetched again on its own."""

    OFF = "off"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class RefreshOutcome(StrEnum):
    UNCHANGED = "unchanged"  # every page answered 304 or had the same text: nothing rewritten
    UPDATED = "updated"  # the pages that changed have new chunks; the others kept theirs
    FAILED = "failed"  # the previous chunks stay in place; `reason` says why


class TextSourceCreate(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    text: Annotated[str, Field(min_length=1, max_length=1_000_000)]


class QuestionAnswer(RequestModel):
    question: Annotated[str, Field(min_length=1, max_length=1000)]
    answer: Annotated[str, Field(min_length=1, max_length=10_000)]


class QASourceCreate(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=200)] = "Questions and answers"
    pairs: Annotated[list[QuestionAnswer], Field(min_length=1, max_length=1000)]


def _compiles(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        compiled(pattern)  # PatternError (a ValueError): a 422 naming the pattern
    return patterns


Patterns = Annotated[
    list[Annotated[str, Field(max_length=200)]], Field(max_length=20), AfterValidator(_compiles)
]


CrawlMode = Literal["page", "sitemap", "crawl"]


def _without_credentials(url: HttpUrl) -> HttpUrl:
    # Refused rather than stored: the source's URL is shown, echoed in errors and logged.
    if url.username is not None or url.password is not None:
        raise ValueError(
            "a URL with a user name or password is not accepted; "
            "remove the part before @ (pages behind a login cannot be fetched)"
        )
    return url


class UrlSourceCreate(RequestModel):
    url: Annotated[HttpUrl, Field(max_length=2000), AfterValidator(_without_credentials)]
    mode: CrawlMode = "page"
    max_depth: Annotated[int, Field(ge=0, le=5)] = 2
    max_pages: Annotated[int, Field(ge=1, le=500)] = 50
    include: Patterns = Field(
        default_factory=list, description="Path patterns (RE2); any must match"
    )
    exclude: Patterns = Field(
        default_factory=list, description="Path patterns (RE2); none may match"
    )
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    refresh_schedule: RefreshSchedule | None = Field(
        default=None,
        description="How often the pages are fetched again; null or omitted: the chatbot's "
        "default (`/source-defaults`)",
    )


class SourceUpdate(RequestModel):
    """Only the fields sent are changed."""

    refresh_schedule: RefreshSchedule | None = Field(
        default=None,
        description="off, hourly, daily or weekly (URL sources only); null: the chatbot's default",
    )


class SourceSettings(RequestModel):
    """A chatbot's defaults for its sources."""

    refresh_schedule: RefreshSchedule = Field(
        default=RefreshSchedule.OFF,
        description="The refresh schedule of URL sources that have none of their own",
    )


class LastRefresh(BaseModel):
    outcome: RefreshOutcome
    reason: str | None = None


class Progress(BaseModel):
    percent: int = 0
    chunks: int = 0
    pages: int = 0


class SourceOut(BaseModel):
    id: str
    chatbot_id: str
    kind: SourceKind
    title: str
    filename: str | None = None
    url: str | None = None
    status: SourceStatus
    error: str | None = None
    notice: str | None = Field(
        default=None,
        description="Why a pending source is not being processed yet (no ingestion worker)",
    )
    progress: Progress
    char_count: int | None = None
    chunk_count: int = 0
    refresh_schedule: RefreshSchedule | None = Field(
        default=None, description="The source's own schedule; null: the chatbot's default"
    )
    last_refreshed_at: datetime | None = None
    next_refresh_at: datetime | None = None
    last_refresh_outcome: LastRefresh | None = None
    created_at: datetime
    updated_at: datetime
