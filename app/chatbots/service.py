"""Chatbot rules: ownership is settled by the owned_chatbot dependency before these run."""

import logging
from typing import Any, cast

from app.audit.documents import AuditAction
from app.audit.log import AuditTrail
from app.chatbots.allowlist import ModelAllowlist
from app.chatbots.documents import (
    AppearanceDocument,
    ChatbotDocument,
    HandoffSettingsDocument,
    LeadFormDocument,
    ModelSettingsDocument,
)
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotCreate, ChatbotOut, ChatbotUpdate, LeadFormOut
from app.core.errors import NotFoundError, UnprocessableError
from app.core.resources import Resources
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.quotas.documents import BotQuotasDocument
from app.quotas.errors import QuotaStockError
from app.quotas.plans import Plans
from app.users.documents import UserDocument

logger = logging.getLogger(__name__)


class ChatbotNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such chatbot")


class ChunkOverlapError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("retrieval.chunk_overlap must be smaller than retrieval.chunk_size")


class LeadFormFieldsError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("lead_form.fields: the lead form must ask for at least one field")


def _lead_form_fields_to_set(chatbot: ChatbotDocument, fields: dict[str, Any]) -> None:
    """Turns a sent `lead_form.fields` into one dotted path per entry, so the entries not sent
    are kept; refuses a form left asking for nothing."""
    sent = fields.pop("lead_form.fields", None)
    if sent is None:
        return
    fields.update({f"lead_form.fields.{name}": mode for name, mode in sent.items()})
    stored = LeadFormOut.model_validate(chatbot.get("lead_form", {})).fields.model_dump()
    if all(mode == "off" for mode in {**stored, **sent}.values()):
        raise LeadFormFieldsError()


class ChatbotService:
    def __init__(self, chatbots: ChatbotRepository, plans: Plans, models: ModelAllowlist) -> None:
        self._chatbots = chatbots
        self._plans = plans
        self._models = models

    @classmethod
    def of(cls, resources: Resources) -> "ChatbotService":
        return cls(
            ChatbotRepository(resources),
            Plans(resources),
            ModelAllowlist(resources),
        )

    async def _check_model(self, model: ModelSettingsDocument) -> None:
        """A bot answering with the platform's LLM names an allowed model, within the ceiling."""
        if model["provider"] == "openai":
            (await self._models.current()).check(model["model"], model["max_tokens"])

    async def create(self, user: UserDocument, request: ChatbotCreate) -> ChatbotOut:
        now = utcnow()
        model, retrieval = request.model, request.retrieval
        max_tokens = model.max_tokens
        if model.provider == "openai" and "max_tokens" not in model.model_fields_set:
            # The default fits under whatever ceiling the platform sets.
            max_tokens = min(max_tokens, (await self._models.current()).max_tokens_ceiling)
        model_settings: ModelSettingsDocument = {
            "provider": model.provider,
            "model": model.model,
            "temperature": model.temperature,
            "max_tokens": max_tokens,
        }
        await self._check_model(model_settings)
        chatbot: ChatbotDocument = {
            "id": new_id(),
            "user_id": user["id"],
            "name": request.name,
            "description": request.description,
            "system_prompt": request.system_prompt,
            "welcome_message": request.welcome_message,
            "model": model_settings,
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
            "handoff": cast("HandoffSettingsDocument", request.handoff.model_dump(mode="json")),
            "lead_form": cast("LeadFormDocument", request.lead_form.model_dump(mode="json")),
            "retention_days": request.retention_days,
            "quotas": cast("BotQuotasDocument", request.quotas.model_dump()),
            "created_at": now,
            "updated_at": now,
        }
        # Insert, then count: concurrent creations can only be refused too eagerly, never let
        # the owner past the cap (the last one kept has counted every one kept before it).
        cap = (await self._plans.of(user["id"])).max_chatbots
        await self._chatbots.insert(chatbot)
        if await self._chatbots.count_owned(user["id"]) > cap.value:
            await self._chatbots.remove_unused(chatbot["id"])
            raise QuotaStockError(
                cap.quota,
                cap.value,
                f"An account may have at most {cap.value} chatbots ({cap.origin}); "
                "delete one first",
            )
        return ChatbotOut.model_validate(chatbot)

    async def list(
        self, user: UserDocument, name_contains: str | None, cursor: str | None, limit: int
    ) -> Page[ChatbotOut]:
        found = await self._chatbots.list_owned(
            user["id"], name_contains=name_contains, cursor=cursor, limit=limit + 1
        )
        return page_of(found, limit, ChatbotOut.model_validate, "created_at")

    async def update(
        self, chatbot: ChatbotDocument, request: ChatbotUpdate, audit: AuditTrail
    ) -> ChatbotOut:
        fields = request.to_set()
        _lead_form_fields_to_set(chatbot, fields)
        if "retrieval.chunk_size" in fields or "retrieval.chunk_overlap" in fields:
            size = fields.get("retrieval.chunk_size", chatbot["retrieval"]["chunk_size"])
            overlap = fields.get("retrieval.chunk_overlap", chatbot["retrieval"]["chunk_overlap"])
            if overlap >= size:
                raise ChunkOverlapError()
        if any(name.startswith("model.") for name in fields):
            # The settings as they will be, so a bot on a removed model must choose another.
            changed = {
                name.removeprefix("model."): value
                for name, value in fields.items()
                if name.startswith("model.")
            }
            await self._check_model(cast("ModelSettingsDocument", {**chatbot["model"], **changed}))
        if not fields:
            return ChatbotOut.model_validate(chatbot)
        updated = await self._chatbots.update_owned(
            chatbot["user_id"], chatbot["id"], {**fields, "updated_at": utcnow()}
        )
        if updated is None:
            raise ChatbotNotFoundError()
        if updated["visibility"] != chatbot["visibility"]:
            await audit.record(
                AuditAction.VISIBILITY_CHANGE,
                actor_id=chatbot["user_id"],
                target=f"chatbot:{chatbot['id']}",
                owner_id=chatbot["user_id"],
                details={"from": str(chatbot["visibility"]), "to": str(updated["visibility"])},
            )
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
