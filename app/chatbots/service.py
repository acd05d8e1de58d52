"""Chatbot rules: ownership is settled by the owned_chatbot dependency before these run."""

import logging
from typing import cast

from app.chatbots.documents import AppearanceDocument, ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotCreate, ChatbotOut, ChatbotUpdate
from app.core.errors import NotFoundError, UnprocessableError
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.users.documents import UserDocument

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

    async def create(self, user: UserDocument, request: ChatbotCreate) -> ChatbotOut:
        now = utcnow()
        model, retrieval = request.model, request.retrieval
        chatbot: ChatbotDocument = {
            "id": new_id(),
            "user_id": user["id"],
            "name": request.name,
            "description": request.description,
            "system_prompt": request.system_prompt,
            "welcome_message": request.welcome_message,
            "model": {
                "provider": model.provider,
                "model": model.model,
                "temperature": model.temperature,
                "max_tokens": model.max_tokens,
            },
            "retrieval": {
                "top_k": retrieval.top_k,
                "score_threshold": retrieval.score_threshold,
                "chunk_size": retrieval.chunk_size,
                "chunk_overlap": retrieval.chunk_overlap,
            },
            "visibility": request.visibility,
            "allowed_origins": list(request.allowed_origins),
            "status": request.status,
            "appearance": cast("AppearanceDocument", request.appearance.model_dump(mode="json")),
            "created_at": now,
            "updated_at": now,
        }
        await self._chatbots.insert(chatbot)
        return ChatbotOut.model_validate(chatbot)

    async def list(
        self, user: UserDocument, name_contains: str | None, cursor: str | None, limit: int
    ) -> Page[ChatbotOut]:
        found = await self._chatbots.list_owned(
            user["id"], name_contains=name_contains, cursor=cursor, limit=limit + 1
        )
        return page_of(found, limit, ChatbotOut.model_validate, "created_at")

    async def update(self, chatbot: ChatbotDocument, request: ChatbotUpdate) -> ChatbotOut:
        fields = request.to_set()
        if "retrieval.chunk_size" in fields or "retrieval.chunk_overlap" in fields:
            size = fields.get("retrieval.chunk_size", chatbot["retrieval"]["chunk_size"])
            overlap = fields.get("retrieval.chunk_overlap", chatbot["retrieval"]["chunk_overlap"])
            if overlap >= size:
                raise ChunkOverlapError()
        if not fields:
            return ChatbotOut.model_validate(chatbot)
        updated = await self._chatbots.update_owned(
            chatbot["user_id"], chatbot["id"], {**fields, "updated_at": utcnow()}
        )
        if updated is None:
            raise ChatbotNotFoundError()
        return ChatbotOut.model_validate(updated)

    async def delete(self, chatbot: ChatbotDocument) -> None:
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
