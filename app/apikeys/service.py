"""API keys for their owners: shown once, stored as a digest, recognisable by their prefix
(checking a presented key is an access rule: `app.users.access`)."""

from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.audit.documents import AuditAction
from app.audit.log import AuditTrail
from app.chatbots.documents import ChatbotDocument
from app.core.errors import LimitReachedError, NotFoundError
from app.core.schemas import Page, page_of
from app.core.security import API_KEY_MARKER, new_id, random_secret, sha256_hex, utcnow
from app.users.documents import ApiKeyDocument
from app.users.repository import ApiKeyRepository

PREFIX_LENGTH = len(API_KEY_MARKER) + 8


class ApiKeyService:
    def __init__(self, keys: ApiKeyRepository, max_per_chatbot: int) -> None:
        self._keys = keys
        self._max_per_chatbot = max_per_chatbot

    async def create(
        self, chatbot: ChatbotDocument, request: ApiKeyCreate, audit: AuditTrail
    ) -> ApiKeyCreated:
        key_id = new_id()
        secret = f"{API_KEY_MARKER}{key_id[:8]}_{random_secret()}"
        document: ApiKeyDocument = {
            "id": key_id,
            "name": request.name,
            "prefix": secret[:PREFIX_LENGTH],
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "key_hash": sha256_hex(secret),
            "created_at": utcnow(),
            "last_used_at": None,
            "revoked_at": None,
        }
        # Insert, then count (as for chatbots): concurrent requests never pass the cap.
        await self._keys.insert(document)
        if await self._keys.count_live(chatbot["id"]) > self._max_per_chatbot:
            await self._keys.remove_unused(key_id)
            raise LimitReachedError(
                f"A chatbot may have at most {self._max_per_chatbot} live API keys "
                "(MAX_API_KEYS_PER_CHATBOT); revoke one first"
            )
        await _record(audit, AuditAction.API_KEY_CREATE, chatbot, key_id)
        return ApiKeyCreated.model_validate({**document, "key": secret})

    async def list(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[ApiKeyOut]:
        keys = await self._keys.list_for_chatbot(chatbot["id"], cursor, limit + 1)
        return page_of(keys, limit, ApiKeyOut.model_validate, "created_at")

    async def revoke(self, chatbot: ChatbotDocument, key_id: str, audit: AuditTrail) -> None:
        if not await self._keys.revoke(chatbot["id"], key_id, utcnow()):
            raise NotFoundError("No such API key on this chatbot")
        await _record(audit, AuditAction.API_KEY_REVOKE, chatbot, key_id)


async def _record(
    audit: AuditTrail, action: AuditAction, chatbot: ChatbotDocument, key_id: str
) -> None:
    """The key's id and its public prefix (the marker and the id's first characters) only."""
    await audit.record(
        action,
        actor_id=chatbot["user_id"],
        target=f"api_key:{key_id}",
        owner_id=chatbot["user_id"],
        details={"chatbot_id": chatbot["id"], "prefix": API_KEY_MARKER + key_id[:8]},
    )
