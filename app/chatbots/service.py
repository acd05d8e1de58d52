"""Chatbot rules: ownership is settled by the owned_chatbot dependency before these run."""

import logging

from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotCreate, ChatbotOut, ChatbotUpdate
from app.core.db import Document
from app.core.errors import NotFoundError, UnprocessableError
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow

logger = logging.getLogger(__name__)


class ChatbotNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such chatbot")


class ChunkOverlapError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("retrieval.chunk_overlap must be smaller than retrieval.chunk_size")


class ChatbotService:
    def __init__(self, chatbots: ChatbotRepository) -> None:
        self._chatbots = chatbots

    async def create(self, user: Document, request: ChatbotCreate) -> ChatbotOut:
        now = utcnow()
        chatbot = {
            "id": new_id(),
            "user_id": user["id"],
            **request.model_dump(mode="json"),
            "created_at": now,
            "updated_at": now,
        }
        await self._chatbots.insert(chatbot)
        return ChatbotOut(**chatbot)

    async def list(
        self, user: Document, name_contains: str | None, cursor: str | None, limit: int
    ) -> Page[ChatbotOut]:
        found = await self._chatbots.list_owned(
            user["id"], name_contains=name_contains, cursor=cursor, limit=limit + 1
        )
        return page_of(found, limit, lambda chatbot: ChatbotOut(**chatbot), "created_at")

    async def update(self, chatbot: Document, request: ChatbotUpdate) -> ChatbotOut:
        fields = request.to_set()
        if "retrieval.chunk_size" in fields or "retrieval.chunk_overlap" in fields:
            size = fields.get("retrieval.chunk_size", chatbot["retrieval"]["chunk_size"])
            overlap = fields.get("retrieval.chunk_overlap", chatbot["retrieval"]["chunk_overlap"])
            if overlap >= size:
                raise ChunkOverlapError()
        if not fields:
            return ChatbotOut(**chatbot)
        updated = await self._chatbots.update_owned(
            chatbot["user_id"], chatbot["id"], {**fields, "updated_at": utcnow()}
        )
        if updated is None:
            raise ChatbotNotFoundError()
        return ChatbotOut(**updated)

    async def delete(self, chatbot: Document) -> None:
        """Hides the bot at once; its data is purged by purge() (run after the response)."""
        if not await self._chatbots.mark_deleting(chatbot["user_id"], chatbot["id"]):
            raise ChatbotNotFoundError()

    async def purge(self, chatbot_id: str) -> None:
        await self._chatbots.purge(chatbot_id)
        logger.info("chatbot %s and its data deleted", chatbot_id)

    async def resume_purges(self) -> None:
        """Finishes deletions that a stopped process left half done."""
        for chatbot_id in await self._chatbots.pending_purges():
            await self.purge(chatbot_id)
