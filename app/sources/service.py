"""Knowledge sources: accept, queue, and turn into chunks (in the worker, or in-process)."""

import asyncio
import hashlib
import logging
from http import HTTPStatus

from bson import Binary

from app.chatbots.repository import ChatbotRepository
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import DomainError, NotFoundError
from app.core.events import publish_event
from app.core.redis import RedisClient
from app.core.security import new_id, utcnow
from app.sources.chunking import chunk_text
from app.sources.extract import ExtractionError, extract_text, file_type
from app.sources.queue import IngestQueue
from app.sources.repository import SourceRepository
from app.sources.schemas import (
    QASourceCreate,
    SourceKind,
    SourceOut,
    SourceStatus,
    TextSourceCreate,
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


class SourceNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such source on this chatbot")


def source_out(source: Document) -> SourceOut:
    filename = (source.get("file") or {}).get("filename")
    return SourceOut.model_validate({**source, "filename": filename})


class IngestionService:
    def __init__(
        self,
        sources: SourceRepository,
        chatbots: ChatbotRepository,
        settings: Settings,
        redis: RedisClient | None,
        queue: IngestQueue | None = None,
    ) -> None:
        self._sources = sources
        self._chatbots = chatbots
        self._settings = settings
        self._redis = redis
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

    async def _add(
        self,
        chatbot: Document,
        kind: SourceKind,
        title: str,
        *,
        text: str | None = None,
        file: Document | None = None,
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
            "content_hash": hashlib.sha256(content).hexdigest(),
            "processed_hash": None,
            "status": SourceStatus.PENDING.value,
            "error": None,
            "progress": {"percent": 0, "chunks": 0},
            "char_count": chars,
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        await self._sources.insert(source)
        assert self._queue is not None
        await self._queue.submit(source["id"])
        return source_out(source)

    async def list(self, chatbot: Document) -> list[SourceOut]:
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
        """Extracts, chunks and stores one source; safe to run again for the same source."""
        source = await self._sources.get_with_data(source_id)
        if source is None:
            return  # deleted meanwhile
        if (
            source["status"] == SourceStatus.READY
            and source["processed_hash"] == source["content_hash"]
        ):
            return  # at-least-once delivery: this exact content is already in place
        chatbot = await self._chatbots.by_id(source["chatbot_id"])
        if chatbot is None or chatbot.get("status") == "deleting":
            return
        await self._sources.set_status(source_id, SourceStatus.PROCESSING, utcnow())
        await self._publish(source, "processing", 0)
        try:
            text: str
            if source.get("text") is not None:
                text = source["text"]
            else:
                file = source["file"]
                text = await asyncio.to_thread(extract_text, file["filename"], bytes(file["data"]))
            used = await self._sources.chars_for_chatbot(source["chatbot_id"], excluding=source_id)
            if used + len(text) > self._settings.ingest_max_chars_per_bot:
                raise SourceLimitError(
                    f"{len(text)} characters would take the chatbot past "
                    f"{self._settings.ingest_max_chars_per_bot}"
                )
            retrieval = chatbot["retrieval"]
            chunks = chunk_text(text, retrieval["chunk_size"], retrieval["chunk_overlap"])
            now = utcnow()
            await self._sources.replace_chunks(
                source_id,
                [
                    {
                        "id": new_id(),
                        "chatbot_id": source["chatbot_id"],
                        "source_id": source_id,
                        "title": source["title"],
                        "heading": chunk.heading,
                        "position": chunk.position,
                        "content": chunk.content,
                        "created_at": now,
                    }
                    for chunk in chunks
                ],
            )
            await self._chatbots.bump_knowledge(source["chatbot_id"])
            await self._sources.set_status(
                source_id,
                SourceStatus.READY,
                utcnow(),
                processed_hash=source["content_hash"],
                char_count=len(text),
                chunk_count=len(chunks),
                progress={"percent": 100, "chunks": len(chunks)},
                error=None,
            )
            await self._publish(source, "ready", 100, chunks=len(chunks))
        except (ExtractionError, SourceLimitError) as error:
            await self._sources.set_status(
                source_id, SourceStatus.FAILED, utcnow(), error=str(error)
            )
            await self._publish(source, "failed", 0, error=str(error))

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
        await publish_event(self._redis, source["user_id"], event)
