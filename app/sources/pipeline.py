"""The ingestion pipeline: a queued source becomes chunks (extract or fetch, chunk, embed, store).
Run by `botsmith worker`, or in the API process when there is no Redis."""

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus
from app.core.config import Settings
from app.core.events import EventBus, publish_event
from app.core.resources import Resources
from app.core.security import new_id, utcnow
from app.retrieval.documents import ChunkDocument, searched
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.retrieval.repository import ChunkRepository
from app.retrieval.segments import SegmentRepository, segments_for_source
from app.sources.chunking import chunk_text
from app.sources.crawl import CrawlSpec, collect
from app.sources.documents import SourceDocument
from app.sources.errors import SourceLimitError
from app.sources.extract import ExtractionError
from app.sources.fetch import Fetcher, FetchError, UnsafeUrlError
from app.sources.repository import SourceRepository
from app.sources.sandbox import ExtractionLimits, extract_isolated
from app.sources.schemas import SourceKind, SourceStatus
from app.sources.service import source_out
from app.webhooks.outbox import SOURCE_FAILED, SOURCE_READY, emit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Page:
    """One document a source holds: a file or a text is one page, a crawl has many."""

    title: str
    url: str | None
    text: str


def content_hash(pages: list[Page]) -> str:
    return hashlib.sha256("\x00".join(f"{p.url}\x00{p.text}" for p in pages).encode()).hexdigest()


class IngestionPipeline:
    def __init__(
        self,
        sources: SourceRepository,
        chunks: ChunkRepository,
        segments: SegmentRepository,
        chatbots: ChatbotRepository,
        settings: Settings,
        events: EventBus,
        fetcher: Fetcher,
        embeddings: EmbeddingsClient | None,
        resources: Resources,
    ) -> None:
        self._sources = sources
        self._chunks = chunks
        self._segments = segments
        self._chatbots = chatbots
        self._settings = settings
        self._events = events
        self._fetcher = fetcher
        self._embeddings = embeddings
        self._resources = resources  # for webhook events

    @classmethod
    def over(cls, resources: Resources) -> "IngestionPipeline":
        """The pipeline over a process's clients and settings."""
        return cls(
            SourceRepository(resources.db),
            ChunkRepository(resources.db),
            SegmentRepository(resources),
            ChatbotRepository(resources),
            resources.settings,
            resources.events,
            Fetcher.configured(resources.settings),
            EmbeddingsClient.configured(resources.http, resources.settings),
            resources,
        )

    async def process(self, source_id: str) -> None:
        """Extracts (or fetches), chunks and stores one source; safe to run again: the source's
        chunks are replaced, and content that did not change is left alone."""
        source = await self._sources.get_with_data(source_id)
        if source is None:
            return  # deleted meanwhile
        if (
            source["kind"] != SourceKind.URL
            and source["status"] == SourceStatus.READY
            and source["processed_hash"] == source["content_hash"]
        ):
            return  # at-least-once delivery: this exact content is already in place
        chatbot = await self._chatbots.by_id(source["chatbot_id"])
        if chatbot is None or chatbot["status"] == ChatbotStatus.DELETING:
            return
        await self._sources.set_status(source_id, SourceStatus.PROCESSING, utcnow())
        await self._publish(source, SourceStatus.PROCESSING, 0)
        budget = self._settings.ingest_job_timeout_seconds
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                await self._ingest(chatbot, source)
        except (ExtractionError, SourceLimitError, FetchError, UnsafeUrlError) as error:
            await self.fail(source_id, str(error))
            await self._publish(source, SourceStatus.FAILED, 0, error=str(error))
            await self._emit_settled(chatbot, source_id, SOURCE_FAILED)
        except TimeoutError:
            if not deadline.expired():
                raise
            reason = f"processing took longer than {budget:g} s (INGEST_JOB_TIMEOUT_SECONDS)"
            await self.fail(source_id, reason)
            await self._publish(source, SourceStatus.FAILED, 0, error=reason)
            await self._emit_settled(chatbot, source_id, SOURCE_FAILED)

    async def _ingest(self, chatbot: ChatbotDocument, source: SourceDocument) -> None:
        pages = await self._pages(source)
        digest = content_hash(pages)
        if source["kind"] == SourceKind.URL and digest == source["processed_hash"]:
            # A re-sync found the same pages: nothing to rewrite.
            await self._sources.set_status(source["id"], SourceStatus.READY, utcnow())
            await self._publish(source, SourceStatus.READY, 100, chunks=source["chunk_count"])
            await self._emit_settled(chatbot, source["id"], SOURCE_READY)
            return
        text_length = sum(len(page.text) for page in pages)
        await self._check_char_limit(source, text_length)
        chunks = self._chunk(chatbot, source, pages)
        endpoint = await self._endpoint_vectors(chunks)
        # The index segments are built while the chunks are written.
        segments, _ = await asyncio.gather(
            asyncio.to_thread(
                segments_for_source, source["id"], [searched(c) for c in chunks], endpoint
            ),
            self._chunks.replace_for_source(source["id"], chunks),
        )
        await self._segments.replace_for_source(source["chatbot_id"], source["id"], segments)
        await self._chatbots.bump_knowledge(source["chatbot_id"])
        await self._sources.set_status(
            source["id"],
            SourceStatus.READY,
            utcnow(),
            content_hash=digest,
            processed_hash=digest,
            char_count=text_length,
            chunk_count=len(chunks),
            progress={"percent": 100, "chunks": len(chunks), "pages": len(pages)},
            error=None,
        )
        await self._publish(source, SourceStatus.READY, 100, chunks=len(chunks))
        await self._emit_settled(chatbot, source["id"], SOURCE_READY)

    async def _check_char_limit(self, source: SourceDocument, text_length: int) -> None:
        limit = self._settings.ingest_max_chars_per_bot
        used = await self._sources.chars_for_chatbot(source["chatbot_id"], excluding=source["id"])
        if used + text_length > limit:
            raise SourceLimitError(f"{text_length} characters would take the chatbot past {limit}")

    async def _pages(self, source: SourceDocument) -> list[Page]:
        if source["kind"] == SourceKind.URL:
            return await self._crawl(source)
        text = source.get("text")
        if text is not None:
            return [Page(source["title"], None, text)]
        file = source["file"]
        assert file is not None, "a source that is not a URL has a text or a file"
        limits = ExtractionLimits.of(self._settings)
        text = await extract_isolated(file["filename"], bytes(file["data"]), limits)
        return [Page(source["title"], None, text)]

    async def _crawl(self, source: SourceDocument) -> list[Page]:
        spec = source["crawl"]
        assert spec is not None, "a URL source has a crawl"

        async def progress(done: int, expected: int) -> None:
            percent = min(99, round(100 * done / max(expected, 1)))
            await self._sources.update(
                source["id"], {"progress": {"percent": percent, "chunks": 0, "pages": done}}
            )
            await self._publish(source, SourceStatus.PROCESSING, percent, pages=done)

        crawl = CrawlSpec(
            url=spec["url"],
            mode=spec["mode"],
            max_depth=spec["max_depth"],
            max_pages=spec["max_pages"],
            include=tuple(spec["include"]),
            exclude=tuple(spec["exclude"]),
        )
        pages = await collect(crawl, self._fetcher, progress)
        if not pages:
            raise FetchError(f"no page with text was found from {spec['url']}")
        return [Page(page.title, page.url, page.text) for page in pages]

    async def _endpoint_vectors(self, chunks: list[ChunkDocument]) -> list[list[float]] | None:
        """The embeddings endpoint's vectors, when one is configured and answers; without them
        retrieval uses BM25 and the static model's vectors."""
        if self._embeddings is None or not chunks:
            return None
        try:
            return await self._embeddings.embed([chunk["content"] for chunk in chunks])
        except EmbeddingsError as error:
            logger.warning("chunks stored without the endpoint's embeddings: %s", error)
            return None

    @staticmethod
    def _chunk(
        chatbot: ChatbotDocument, source: SourceDocument, pages: list[Page]
    ) -> list[ChunkDocument]:
        retrieval = chatbot["retrieval"]
        now = utcnow()
        chunks: list[ChunkDocument] = []
        for page in pages:
            for chunk in chunk_text(page.text, retrieval["chunk_size"], retrieval["chunk_overlap"]):
                chunks.append(
                    {
                        "id": new_id(),
                        "chatbot_id": source["chatbot_id"],
                        "source_id": source["id"],
                        "title": page.title,
                        "url": page.url,
                        "heading": chunk.heading,
                        "position": len(chunks),
                        "content": chunk.content,
                        "created_at": now,
                    }
                )
        return chunks

    async def process_in_process(self, source_id: str) -> None:
        """For the API's in-process queue (no Redis): nothing retries, so an unexpected error
        fails the source instead of leaving it `processing`."""
        try:
            await self.process(source_id)
        except Exception:
            logger.exception("source %s failed unexpectedly", source_id)
            with contextlib.suppress(PyMongoError):
                await self.fail(source_id, "internal error while processing this source")

    async def fail(self, source_id: str, reason: str) -> None:
        await self._sources.set_status(source_id, SourceStatus.FAILED, utcnow(), error=reason)

    async def _emit_settled(self, chatbot: ChatbotDocument, source_id: str, event: str) -> None:
        """source.ready or source.failed for the bot's webhooks, with the source as stored."""
        stored = await self._sources.get(chatbot["id"], source_id)
        if stored is not None:
            data = {"source": source_out(stored).model_dump(mode="json")}
            await emit(self._resources, chatbot, event, data)

    async def _publish(
        self, source: SourceDocument, state: SourceStatus, percent: int, **extra: object
    ) -> None:
        event = {
            "type": "source.progress",
            "chatbot_id": source["chatbot_id"],
            "source_id": source["id"],
            "status": state.value,
            "percent": percent,
            **extra,
        }
        await publish_event(self._events, source["user_id"], event)
