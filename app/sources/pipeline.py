"""The ingestion pipeline: a queued source becomes chunks (extract or fetch, chunk, embed, store).
Run by `botsmith worker`, or in the API process when there is no Redis; scheduled refreshes of
URL sources (`app.sources.refresh`) go through it too.

A URL source is stored page by page: a page that answered 304, or whose text did not change,
keeps its chunks (same ids) and their endpoint vectors; only the pages that changed are chunked
and embedded again."""

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus
from app.core.config import Settings
from app.core.events import EventBus, publish_event
from app.core.resources import Resources
from app.core.security import new_id, sha256_hex, utcnow
from app.quotas.plans import Plans
from app.retrieval.documents import ChunkDocument, SearchedChunk, searched
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.retrieval.repository import ChunkRepository
from app.retrieval.segments import SegmentRepository, segments_for_source
from app.sources.chunking import chunk_text
from app.sources.crawl import CrawlSpec, KnownPage, collect
from app.sources.documents import FetchedPageDocument, SourceDocument
from app.sources.errors import SourceLimitError
from app.sources.extract import ExtractionError
from app.sources.fetch import Fetcher, FetchError, UnsafeUrlError, Validators
from app.sources.repository import SourceRepository
from app.sources.sandbox import ExtractionLimits, extract_isolated
from app.sources.schemas import RefreshOutcome, SourceKind, SourceStatus
from app.sources.service import source_out
from app.webhooks.outbox import SOURCE_FAILED, SOURCE_READY, emit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Page:
    """One document a source holds: a file or a text is one page, a crawl has many."""

    title: str
    url: str | None
    text: str | None  # None: as when last fetched (its chunks are kept)
    digest: str  # of the text
    chars: int
    keeps_chunks: bool = False  # the text is as when last fetched: its chunks stay
    fetched: FetchedPageDocument | None = None  # a web page: what is kept for the next fetch


def content_hash(pages: list[Page]) -> str:
    return hashlib.sha256("\x00".join(f"{p.url}\x00{p.digest}" for p in pages).encode()).hexdigest()


def _page_of_text(title: str, text: str) -> Page:
    return Page(title, None, text, sha256_hex(text), len(text))


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

    async def refresh(self, source_id: str, settled: SourceStatus) -> RefreshOutcome | None:
        """Fetches a URL source again for its schedule, once the caller has marked it
        `processing` (`SourceRepository.claim_for_refresh`). A refresh that fails leaves the
        chunks in place and the source as it was (`settled`), with the reason recorded. None:
        the source or its chatbot is gone."""
        source = await self._sources.get_with_data(source_id)
        if source is None:
            return None
        chatbot = await self._chatbots.by_id(source["chatbot_id"])
        if chatbot is None or chatbot["status"] == ChatbotStatus.DELETING:
            await self._sources.set_status(source_id, settled, utcnow())
            return None
        await self._publish(source, SourceStatus.PROCESSING, 0)
        budget = self._settings.ingest_job_timeout_seconds
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                return await self._ingest(chatbot, source, refresh=True)
        except (ExtractionError, SourceLimitError, FetchError, UnsafeUrlError) as error:
            reason = str(error)
        except TimeoutError:
            if not deadline.expired():
                raise
            reason = f"refreshing took longer than {budget:g} s (INGEST_JOB_TIMEOUT_SECONDS)"
        await self.refresh_failed(source, settled, reason)
        return RefreshOutcome.FAILED

    async def refresh_failed(
        self, source: SourceDocument, settled: SourceStatus, reason: str
    ) -> None:
        """Records a failed refresh; the source is back as it was before it."""
        now = utcnow()
        await self._sources.set_status(
            source["id"],
            settled,
            now,
            progress=source["progress"],
            last_refreshed_at=now,
            last_refresh_outcome={"outcome": RefreshOutcome.FAILED.value, "reason": reason},
        )
        await self._publish(source, settled, 100, error=reason)

    async def _ingest(
        self, chatbot: ChatbotDocument, source: SourceDocument, *, refresh: bool = False
    ) -> RefreshOutcome:
        """Stores the source's pages; `refresh`: for its schedule (recorded on the source)."""
        kept = await self._chunks_by_page(source)
        pages = await self._pages(source, kept)
        digest = content_hash(pages)
        fetched = [page.fetched for page in pages if page.fetched is not None]

        def recorded(outcome: RefreshOutcome) -> dict[str, Any]:
            if not refresh:
                return {}
            last = {"outcome": outcome.value, "reason": None}
            return {"last_refreshed_at": utcnow(), "last_refresh_outcome": last}

        if source["kind"] == SourceKind.URL and digest == source["processed_hash"]:
            # The same pages as last time: nothing to rewrite.
            count = source["chunk_count"]
            await self._sources.set_status(
                source["id"],
                SourceStatus.READY,
                utcnow(),
                fetched_pages=fetched,
                progress={"percent": 100, "chunks": count, "pages": len(pages)},
                error=None,
                **recorded(RefreshOutcome.UNCHANGED),
            )
            await self._publish(source, SourceStatus.READY, 100, chunks=count)
            if not refresh:
                await self._emit_settled(chatbot, source["id"], SOURCE_READY)
            return RefreshOutcome.UNCHANGED
        text_length = sum(page.chars for page in pages)
        await self._check_char_limit(source, text_length)
        chunks = self._chunk(chatbot, source, pages, kept)
        in_place = {chunk["id"] for group in kept.values() for chunk in group}
        reused = {chunk["id"] for chunk in chunks if chunk["id"] in in_place}
        endpoint = await self._endpoint_vectors(source, chunks, reused)
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
            **({"fetched_pages": fetched} if source["kind"] == SourceKind.URL else {}),
            **recorded(RefreshOutcome.UPDATED),
        )
        await self._publish(source, SourceStatus.READY, 100, chunks=len(chunks))
        await self._emit_settled(chatbot, source["id"], SOURCE_READY)
        return RefreshOutcome.UPDATED

    async def _check_char_limit(self, source: SourceDocument, text_length: int) -> None:
        # The owner's plan, else INGEST_MAX_CHARS_PER_BOT.
        plan = await Plans(self._resources).of(source["user_id"])
        limit = plan.max_chars_per_chatbot.value
        used = await self._sources.chars_for_chatbot(source["chatbot_id"], excluding=source["id"])
        if used + text_length > limit:
            raise SourceLimitError(f"{text_length} characters would take the chatbot past {limit}")

    async def _chunks_by_page(self, source: SourceDocument) -> dict[str, list[SearchedChunk]]:
        """A URL source's chunks in place, by the URL of their page (none before a first fetch)."""
        if source["kind"] != SourceKind.URL or not source.get("fetched_pages"):
            return {}
        by_page: dict[str, list[SearchedChunk]] = {}
        for chunk in await self._chunks.for_source(source["id"]):
            by_page.setdefault(chunk["url"] or "", []).append(chunk)
        return by_page

    async def _pages(
        self, source: SourceDocument, kept: dict[str, list[SearchedChunk]]
    ) -> list[Page]:
        if source["kind"] == SourceKind.URL:
            return await self._crawl(source, kept)
        text = source.get("text")
        if text is not None:
            return [_page_of_text(source["title"], text)]
        file = source["file"]
        assert file is not None, "a source that is not a URL has a text or a file"
        limits = ExtractionLimits.of(self._settings)
        text = await extract_isolated(file["filename"], bytes(file["data"]), limits)
        return [_page_of_text(source["title"], text)]

    async def _crawl(
        self, source: SourceDocument, kept: dict[str, list[SearchedChunk]]
    ) -> list[Page]:
        """The source's pages; a page fetched before whose chunks are in place is asked for
        conditionally, and keeps its chunks when it answers 304 or with the same text."""
        spec = source["crawl"]
        assert spec is not None, "a URL source has a crawl"
        before = {page["url"]: page for page in source.get("fetched_pages", [])}
        known = {
            url: KnownPage(
                Validators(page["final_url"], page["etag"], page["last_modified"]), page["title"]
            )
            for url, page in before.items()
            if page["final_url"] in kept
        }

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
        web_pages = await collect(crawl, self._fetcher, progress, known)
        if not web_pages:
            raise FetchError(f"no page with text was found from {spec['url']}")
        pages = []
        for web in web_pages:
            previous = before.get(web.requested)
            if web.text is None:
                assert previous is not None, "only a known page comes back without text"
                digest, chars, keeps = previous["digest"], previous["chars"], True
            else:
                digest, chars = sha256_hex(web.text), len(web.text)
                keeps = (
                    previous is not None
                    and previous["digest"] == digest
                    and previous["final_url"] == web.url
                    and web.url in kept
                )
            fetched: FetchedPageDocument = {
                "url": web.requested,
                "final_url": web.url,
                "title": web.title,
                "etag": web.etag,
                "last_modified": web.last_modified,
                "digest": digest,
                "chars": chars,
            }
            pages.append(Page(web.title, web.url, web.text, digest, chars, keeps, fetched))
        return pages

    async def _endpoint_vectors(
        self, source: SourceDocument, chunks: list[ChunkDocument], reused: set[str]
    ) -> list[list[float]] | None:
        """The embeddings endpoint's vectors, when one is configured and answers; without them
        retrieval uses BM25 and the static model's vectors. Chunks kept from before keep the
        vectors they have: only new chunks are sent to the endpoint."""
        if self._embeddings is None or not chunks:
            return None
        stored = await self._stored_endpoint_vectors(source, reused) if reused else {}
        missing = [chunk for chunk in chunks if chunk["id"] not in stored]
        try:
            embedded = await self._embeddings.embed([chunk["content"] for chunk in missing])
        except EmbeddingsError as error:
            logger.warning("chunks stored without the endpoint's embeddings: %s", error)
            return None
        stored.update(zip((chunk["id"] for chunk in missing), embedded, strict=True))
        return [stored[chunk["id"]] for chunk in chunks]

    async def _stored_endpoint_vectors(
        self, source: SourceDocument, ids: set[str]
    ) -> dict[str, list[float]]:
        """The endpoint's vectors of these chunks in the source's index segments, if it has them."""
        prefix = f"{source['id']}:"
        builds = await self._segments.builds(source["chatbot_id"])
        segments = await self._segments.load(
            [build for key, build in builds.items() if key.startswith(prefix)]
        )
        vectors: dict[str, list[float]] = {}
        for segment in segments:
            if segment.endpoint_vectors is None:
                continue
            for chunk, row in zip(segment.chunks, segment.endpoint_vectors, strict=True):
                if chunk["id"] in ids:
                    vectors[chunk["id"]] = [float(x) for x in row]
        return vectors

    @staticmethod
    def _chunk(
        chatbot: ChatbotDocument,
        source: SourceDocument,
        pages: list[Page],
        kept: dict[str, list[SearchedChunk]],
    ) -> list[ChunkDocument]:
        """New chunks for the pages that changed; the chunks in place (same ids) for the
        others."""
        retrieval = chatbot["retrieval"]
        now = utcnow()
        chunks: list[ChunkDocument] = []
        for page in pages:
            if page.keeps_chunks:
                for old in kept[page.url or ""]:
                    chunks.append(
                        {
                            "id": old["id"],
                            "chatbot_id": source["chatbot_id"],
                            "source_id": source["id"],
                            "title": old["title"],
                            "url": old["url"],
                            "heading": old["heading"],
                            "position": len(chunks),
                            "content": old["content"],
                            "created_at": now,
                        }
                    )
                continue
            assert page.text is not None, "a page without text keeps its chunks"
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
