"""Knowledge sources: accept, queue, and turn into chunks (in the worker, or in-process)."""

import asyncio
import hashlib
import logging
from http import HTTPStatus

import httpx
from bson import Binary

from app.chatbots.repository import ChatbotRepository
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import DomainError, NotFoundError
from app.core.events import EventBus, publish_event
from app.core.security import new_id, utcnow
from app.retrieval.embeddings import EmbeddingsClient, EmbeddingsError
from app.sources.chunking import chunk_text
from app.sources.crawl import CrawlSpec, collect
from app.sources.extract import ExtractionError, extract_text, file_type
from app.sources.fetch import Allowlist, Fetcher, FetchError, UnsafeUrlError
from app.sources.queue import IngestQueue
from app.sources.repository import SourceRepository
from app.sources.schemas import (
    QASourceCreate,
    SourceKind,
    SourceOut,
    SourceStatus,
    TextSourceCreate,
    UrlSourceCreate,
)

logger = logging.getLogger(__name__)


class SourceLimitError(DomainError):
    status = HTTPStatus.CONFLICT
    title = "Knowledge limit reached"


class UnsupportedFileError(DomainError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported file type"


class FileTooLargeError(DomainError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    title = "File too large"


class RefusedUrlError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "URL refused"


class SourceNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such source on this chatbot")


def source_out(source: Document) -> SourceOut:
    filename = (source.get("file") or {}).get("filename")
    url = (source.get("crawl") or {}).get("url")
    return SourceOut.model_validate({**source, "filename": filename, "url": url})


class IngestionService:
    def __init__(
        self,
        sources: SourceRepository,
        chatbots: ChatbotRepository,
        settings: Settings,
        events: EventBus,
        http: httpx.AsyncClient | None,
        queue: IngestQueue | None = None,
        embeddings: EmbeddingsClient | None = None,
    ) -> None:
        self._embeddings = embeddings
        self._sources = sources
        self._chatbots = chatbots
        self._settings = settings
        self._events = events
        self._http = http
        self._queue = queue

    # -- accepting sources (API) -------------------------------------------------------------

    async def add_text(self, chatbot: Document, request: TextSourceCreate) -> SourceOut:
        return await self._add(chatbot, SourceKind.TEXT, request.title, text=request.text)

    async def add_qa(self, chatbot: Document, request: QASourceCreate) -> SourceOut:
        # Each pair becomes its own section, so each lands in its own chunk.
        text = "\n\n".join(f"# {pair.question}\n{pair.answer}" for pair in request.pairs)
        return await self._add(chatbot, SourceKind.QA, request.title, text=text)

    async def add_file(self, chatbot: Document, filename: str, data: bytes) -> SourceOut:
        media_type = file_type(filename)
        if media_type is None:
            raise UnsupportedFileError(
                f"{filename}: supported types are .txt, .md, .html, .csv, .pdf and .docx"
            )
        if len(data) > self._settings.ingest_max_file_bytes:
            raise FileTooLargeError(
                f"{filename} is larger than {self._settings.ingest_max_file_bytes} bytes"
            )
        file = {
            "filename": filename,
            "media_type": media_type,
            "size": len(data),
            "data": Binary(data),
        }
        return await self._add(chatbot, SourceKind.FILE, filename, file=file, raw=data)

    async def add_url(self, chatbot: Document, request: UrlSourceCreate) -> SourceOut:
        url = str(request.url)
        try:
            await self._fetcher().check(url)
        except UnsafeUrlError as error:
            raise RefusedUrlError(str(error)) from None
        crawl = request.model_dump(mode="json", exclude={"title"})
        title = request.title or url
        return await self._add(chatbot, SourceKind.URL, title, crawl=crawl, raw=url.encode())

    def _fetcher(self) -> Fetcher:
        settings = self._settings
        assert self._http is not None
        return Fetcher(
            self._http,
            Allowlist.parse(settings.ingest_url_allowlist),
            settings.ingest_fetch_timeout_seconds,
            settings.ingest_fetch_max_bytes,
        )

    async def _add(
        self,
        chatbot: Document,
        kind: SourceKind,
        title: str,
        *,
        text: str | None = None,
        file: Document | None = None,
        crawl: Document | None = None,
        raw: bytes | None = None,
    ) -> SourceOut:
        settings = self._settings
        if (
            await self._sources.count_for_chatbot(chatbot["id"])
            >= settings.ingest_max_sources_per_bot
        ):
            raise SourceLimitError(
                f"This chatbot already has {settings.ingest_max_sources_per_bot} sources"
            )
        chars = len(text) if text is not None else None
        used = await self._sources.chars_for_chatbot(chatbot["id"])
        if chars is not None and used + chars > settings.ingest_max_chars_per_bot:
            raise SourceLimitError(
                f"This source would take the chatbot past {settings.ingest_max_chars_per_bot} "
                f"characters of knowledge ({used} used)"
            )
        now = utcnow()
        content = raw if raw is not None else (text or "").encode()
        source = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "kind": kind.value,
            "title": title,
            "text": text,
            "file": file,
            "crawl": crawl,
            "content_hash": hashlib.sha256(content).hexdigest(),
            "processed_hash": None,
            "status": SourceStatus.PENDING.value,
            "error": None,
            "progress": {"percent": 0, "chunks": 0, "pages": 0},
            "char_count": chars,
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        await self._sources.insert(source)
        assert self._queue is not None
        await self._queue.submit(source["id"])
        return source_out(source)

    async def list_sources(self, chatbot: Document) -> list[SourceOut]:
        return [source_out(s) for s in await self._sources.list_for_chatbot(chatbot["id"])]

    async def get(self, chatbot: Document, source_id: str) -> SourceOut:
        source = await self._sources.get(chatbot["id"], source_id)
        if source is None:
            raise SourceNotFoundError()
        return source_out(source)

    async def delete(self, chatbot: Document, source_id: str) -> None:
        if await self._sources.get(chatbot["id"], source_id) is None:
            raise SourceNotFoundError()
        await self._sources.delete(source_id)
        await self._chatbots.bump_knowledge(chatbot["id"])

    async def resync(self, chatbot: Document, source_id: str) -> SourceOut:
        """Queues the source again; unchanged content is recognised and left as it is."""
        source = await self._sources.get(chatbot["id"], source_id)
        if source is None:
            raise SourceNotFoundError()
        assert self._queue is not None
        await self._queue.submit(source_id)
        return source_out(source)

    # -- processing (worker, or in-process without Redis) -------------------------------------

    async def process(self, source_id: str) -> None:
        """Extracts (or fetches), chunks and stores one source; safe to run again: the source's
        chunks are replaced, and content that did not change is left alone."""
        source = await self._sources.get_with_data(source_id)
        if source is None:
            return  # deleted meanwhile
        unchanged = source["processed_hash"] == source["content_hash"]
        if (
            source["kind"] != SourceKind.URL
            and source["status"] == SourceStatus.READY
            and unchanged
        ):
            return  # at-least-once delivery: this exact content is already in place
        chatbot = await self._chatbots.by_id(source["chatbot_id"])
        if chatbot is None or chatbot.get("status") == "deleting":
            return
        await self._sources.set_status(source_id, SourceStatus.PROCESSING, utcnow())
        await self._publish(source, "processing", 0)
        try:
            documents = await self._documents(source)
            text_length = sum(len(text) for _, _, text in documents)
            content_hash = hashlib.sha256(
                "\x00".join(f"{url}\x00{text}" for _, url, text in documents).encode()
            ).hexdigest()
            if source["kind"] == SourceKind.URL and content_hash == source["processed_hash"]:
                # A re-sync found the same pages: nothing to rewrite.
                await self._sources.set_status(source_id, SourceStatus.READY, utcnow())
                await self._publish(source, "ready", 100, chunks=source["chunk_count"])
                return
            used = await self._sources.chars_for_chatbot(source["chatbot_id"], excluding=source_id)
            if used + text_length > self._settings.ingest_max_chars_per_bot:
                raise SourceLimitError(
                    f"{text_length} characters would take the chatbot past "
                    f"{self._settings.ingest_max_chars_per_bot}"
                )
            chunks = self._chunk(chatbot, source, documents)
            await self._embed(chunks)
            await self._sources.replace_chunks(source_id, chunks)
            await self._chatbots.bump_knowledge(source["chatbot_id"])
            progress = {"percent": 100, "chunks": len(chunks), "pages": len(documents)}
            await self._sources.set_status(
                source_id,
                SourceStatus.READY,
                utcnow(),
                content_hash=content_hash,
                processed_hash=content_hash,
                char_count=text_length,
                chunk_count=len(chunks),
                progress=progress,
                error=None,
            )
            await self._publish(source, "ready", 100, chunks=len(chunks))
        except (ExtractionError, SourceLimitError, FetchError, UnsafeUrlError) as error:
            await self.fail(source_id, str(error))
            await self._publish(source, "failed", 0, error=str(error))

    async def _documents(self, source: Document) -> list[tuple[str, str | None, str]]:
        """(title, URL, text) of each document the source holds."""
        if source["kind"] == SourceKind.URL:
            spec = source["crawl"]

            async def progress(done: int, expected: int) -> None:
                percent = min(99, round(100 * done / max(expected, 1)))
                await self._sources.update(
                    source_id, {"progress": {"percent": percent, "chunks": 0, "pages": done}}
                )
                await self._publish(source, "processing", percent, pages=done)

            source_id = source["id"]
            crawl = CrawlSpec(
                url=spec["url"],
                mode=spec["mode"],
                max_depth=spec["max_depth"],
                max_pages=spec["max_pages"],
                include=tuple(spec["include"]),
                exclude=tuple(spec["exclude"]),
            )
            pages = await collect(crawl, self._fetcher(), progress)
            if not pages:
                raise FetchError(f"no page with text was found from {spec['url']}")
            return [(page.title, page.url, page.text) for page in pages]
        if source.get("text") is not None:
            return [(source["title"], None, source["text"])]
        file = source["file"]
        text = await asyncio.to_thread(extract_text, file["filename"], bytes(file["data"]))
        return [(source["title"], None, text)]

    async def _embed(self, chunks: list[Document]) -> None:
        """Adds vectors for hybrid retrieval; without them the chunks still serve BM25."""
        if self._embeddings is None or not chunks:
            return
        try:
            vectors = await self._embeddings.embed([chunk["content"] for chunk in chunks])
        except EmbeddingsError as error:
            logger.warning("chunks stored without embeddings: %s", error)
            return
        for chunk, vector in zip(chunks, vectors, strict=True):
            chunk["embedding"] = vector

    @staticmethod
    def _chunk(
        chatbot: Document, source: Document, documents: list[tuple[str, str | None, str]]
    ) -> list[Document]:
        retrieval = chatbot["retrieval"]
        now = utcnow()
        chunks: list[Document] = []
        for title, url, text in documents:
            for chunk in chunk_text(text, retrieval["chunk_size"], retrieval["chunk_overlap"]):
                chunks.append(
                    {
                        "id": new_id(),
                        "chatbot_id": source["chatbot_id"],
                        "source_id": source["id"],
                        "title": title,
                        "url": url,
                        "heading": chunk.heading,
                        "position": len(chunks),
                        "content": chunk.content,
                        "created_at": now,
                    }
                )
        return chunks

    async def fail(self, source_id: str, reason: str) -> None:
        await self._sources.set_status(source_id, SourceStatus.FAILED, utcnow(), error=reason)

    async def _publish(self, source: Document, state: str, percent: int, **extra: object) -> None:
        event = {
            "type": "source.progress",
            "chatbot_id": source["chatbot_id"],
            "source_id": source["id"],
            "status": state,
            "percent": percent,
            **extra,
        }
        await publish_event(self._events, source["user_id"], event)
