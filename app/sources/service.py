"""Knowledge sources for their owners: accept (with the knowledge limits), queue, list, delete.
Turning a source into chunks is the pipeline's job (`app.sources.pipeline`)."""

import hashlib
from datetime import datetime

from bson import Binary
from redis.exceptions import RedisError

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.core.config import Settings
from app.core.security import new_id, utcnow
from app.quotas.errors import QuotaStockError
from app.quotas.plans import Plans
from app.retrieval.repository import ChunkRepository
from app.retrieval.segments import SegmentRepository
from app.sources.documents import CrawlDocument, SourceDocument, SourceFileDocument
from app.sources.errors import (
    FileTooLargeError,
    NotRefreshableError,
    RefusedUrlError,
    ResyncPendingError,
    SourceNotFoundError,
    UnsupportedFileError,
)
from app.sources.extract import file_type
from app.sources.fetch import Fetcher, UnsafeUrlError
from app.sources.queue import IngestQueue
from app.sources.repository import SourceRepository
from app.sources.schedule import next_refresh_at
from app.sources.schemas import (
    QASourceCreate,
    RefreshSchedule,
    SourceKind,
    SourceOut,
    SourceSettings,
    SourceStatus,
    SourceUpdate,
    TextSourceCreate,
    UrlSourceCreate,
)


def source_out(source: SourceDocument, waiting: str | None = None) -> SourceOut:
    """The API view; `waiting` says why a pending source is not being processed."""
    file, crawl = source.get("file"), source.get("crawl")
    filename = file["filename"] if file else None
    url = crawl["url"] if crawl else None
    notice = waiting if source["status"] == SourceStatus.PENDING else None
    return SourceOut.model_validate({**source, "filename": filename, "url": url, "notice": notice})


class SourceService:
    def __init__(
        self,
        sources: SourceRepository,
        chunks: ChunkRepository,
        segments: SegmentRepository,
        chatbots: ChatbotRepository,
        settings: Settings,
        queue: IngestQueue,
        fetcher: Fetcher,
        plans: Plans,
    ) -> None:
        self._sources = sources
        self._chunks = chunks
        self._segments = segments
        self._chatbots = chatbots
        self._settings = settings
        self._queue = queue
        self._fetcher = fetcher
        self._plans = plans

    async def add_text(self, chatbot: ChatbotDocument, request: TextSourceCreate) -> SourceOut:
        return await self._add(chatbot, SourceKind.TEXT, request.title, text=request.text)

    async def add_qa(self, chatbot: ChatbotDocument, request: QASourceCreate) -> SourceOut:
        # Each pair becomes its own section, so each lands in its own chunk.
        text = "\n\n".join(f"# {pair.question}\n{pair.answer}" for pair in request.pairs)
        return await self._add(chatbot, SourceKind.QA, request.title, text=text)

    async def add_file(self, chatbot: ChatbotDocument, filename: str, data: bytes) -> SourceOut:
        media_type = file_type(filename)
        if media_type is None:
            raise UnsupportedFileError(
                f"{filename}: supported types are .txt, .md, .html, .csv, .pdf and .docx"
            )
        if len(data) > self._settings.ingest_max_file_bytes:
            raise FileTooLargeError(
                f"{filename} is larger than {self._settings.ingest_max_file_bytes} bytes"
            )
        file: SourceFileDocument = {
            "filename": filename,
            "media_type": media_type,
            "size": len(data),
            "data": Binary(data),
        }
        return await self._add(chatbot, SourceKind.FILE, filename, file=file, raw=data)

    async def add_url(self, chatbot: ChatbotDocument, request: UrlSourceCreate) -> SourceOut:
        url = str(request.url)
        try:
            await self._fetcher.check(url)
        except UnsafeUrlError as error:
            raise RefusedUrlError(str(error)) from None
        crawl: CrawlDocument = {
            "url": url,
            "mode": request.mode,
            "max_depth": request.max_depth,
            "max_pages": request.max_pages,
            "include": list(request.include),
            "exclude": list(request.exclude),
        }
        title = request.title or url
        return await self._add(
            chatbot,
            SourceKind.URL,
            title,
            crawl=crawl,
            raw=url.encode(),
            refresh_schedule=request.refresh_schedule,
        )

    async def _add(
        self,
        chatbot: ChatbotDocument,
        kind: SourceKind,
        title: str,
        *,
        text: str | None = None,
        file: SourceFileDocument | None = None,
        crawl: CrawlDocument | None = None,
        raw: bytes | None = None,
        refresh_schedule: RefreshSchedule | None = None,
    ) -> SourceOut:
        # The owner's plan sets the caps; without one, INGEST_MAX_*_PER_BOT.
        plan = await self._plans.of(chatbot["user_id"])
        max_sources, max_chars = plan.max_sources_per_chatbot, plan.max_chars_per_chatbot
        if await self._sources.count_for_chatbot(chatbot["id"]) >= max_sources.value:
            raise QuotaStockError(
                max_sources.quota,
                max_sources.value,
                f"This chatbot already has {max_sources.value} sources ({max_sources.origin})",
            )
        chars = len(text) if text is not None else None
        used = await self._sources.chars_for_chatbot(chatbot["id"])
        if chars is not None and used + chars > max_chars.value:
            raise QuotaStockError(
                max_chars.quota,
                max_chars.value,
                f"This source would take the chatbot past {max_chars.value} characters of "
                f"knowledge ({used} used; {max_chars.origin})",
            )
        now = utcnow()
        content = raw if raw is not None else (text or "").encode()
        source: SourceDocument = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "kind": kind,
            "title": title,
            "text": text,
            "file": file,
            "crawl": crawl,
            "content_hash": hashlib.sha256(content).hexdigest(),
            "processed_hash": None,
            "status": SourceStatus.PENDING,
            "error": None,
            "progress": {"percent": 0, "chunks": 0, "pages": 0},
            "char_count": chars,
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        if kind == SourceKind.URL:
            schedule = refresh_schedule or await self._sources.default_schedule(chatbot["id"])
            source["refresh_schedule"] = refresh_schedule
            source["next_refresh_at"] = self._next_refresh(schedule)
        await self._sources.insert(source)
        await self._queue.submit(source["id"])
        return source_out(source, await self._waiting([source]))

    async def list_sources(self, chatbot: ChatbotDocument) -> list[SourceOut]:
        sources = await self._sources.list_for_chatbot(chatbot["id"])
        waiting = await self._waiting(sources)
        return [source_out(source, waiting) for source in sources]

    async def get(self, chatbot: ChatbotDocument, source_id: str) -> SourceOut:
        source = await self._sources.get(chatbot["id"], source_id)
        if source is None:
            raise SourceNotFoundError()
        return source_out(source, await self._waiting([source]))

    async def update(
        self, chatbot: ChatbotDocument, source_id: str, request: SourceUpdate
    ) -> SourceOut:
        source = await self._sources.get(chatbot["id"], source_id)
        if source is None:
            raise SourceNotFoundError()
        if "refresh_schedule" in request.model_fields_set:
            if source["kind"] != SourceKind.URL:
                raise NotRefreshableError()
            own = request.refresh_schedule
            schedule = own or await self._sources.default_schedule(chatbot["id"])
            await self._sources.set_schedule(source_id, own, self._next_refresh(schedule))
        return await self.get(chatbot, source_id)

    async def settings(self, chatbot: ChatbotDocument) -> SourceSettings:
        return SourceSettings(refresh_schedule=await self._sources.default_schedule(chatbot["id"]))

    async def save_settings(
        self, chatbot: ChatbotDocument, request: SourceSettings
    ) -> SourceSettings:
        """Saves the chatbot's defaults; URL sources that follow the default refresh schedule
        are scheduled anew when it changes."""
        before = await self.settings(chatbot)
        await self._sources.save_settings(
            {
                "chatbot_id": chatbot["id"],
                "refresh_schedule": request.refresh_schedule,
                "updated_at": utcnow(),
            }
        )
        if request.refresh_schedule != before.refresh_schedule:
            for source in await self._sources.following_default(chatbot["id"]):
                next_at = self._next_refresh(request.refresh_schedule)
                await self._sources.reschedule(source["id"], next_at)
        return request

    def _next_refresh(self, schedule: RefreshSchedule) -> datetime | None:
        return next_refresh_at(utcnow(), schedule, self._settings.source_refresh_period_scale)

    async def _waiting(self, sources: list[SourceDocument]) -> str | None:
        """Why pending sources wait, when no ingestion worker has been seen for a while."""
        if all(source["status"] != SourceStatus.PENDING for source in sources):
            return None
        stale = self._settings.ingest_worker_stale_seconds
        try:
            live = await self._queue.live_workers(stale)
        except RedisError:
            return None  # /readyz reports Redis itself
        if live != 0:  # None: this process ingests
            return None
        return (
            f"Waiting for an ingestion worker: none has been seen for {stale:g} s. "
            "Start one with `botsmith worker` (`make dev` runs one)."
        )

    async def delete(self, chatbot: ChatbotDocument, source_id: str) -> None:
        if await self._sources.get(chatbot["id"], source_id) is None:
            raise SourceNotFoundError()
        await self._segments.delete_for_source(source_id)
        await self._chunks.delete_for_source(source_id)
        await self._sources.delete(source_id)
        await self._chatbots.bump_knowledge(chatbot["id"])

    async def resync(self, chatbot: ChatbotDocument, source_id: str) -> SourceOut:
        """Queues the source again; unchanged content is recognised and left as it is. A source
        already waiting or being processed is not queued a second time (409)."""
        source = await self._sources.queue_again(chatbot["id"], source_id, utcnow())
        if source is None:
            if await self._sources.get(chatbot["id"], source_id) is None:
                raise SourceNotFoundError()
            raise ResyncPendingError()
        await self._queue.submit(source_id)
        return source_out(source, await self._waiting([source]))
