"""A chatbot's API keys, managed by its owner."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.apikeys.dependencies import ApiKeyServiceDep
from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.audit.dependencies import AuditTrailDep
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page

NOT_FOUND = problem_responses(status.HTTP_404_NOT_FOUND)
CREATE_ERRORS = problem_responses(status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT)
router = APIRouter(prefix="/chatbots/{chatbot_id}/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=CREATE_ERRORS)
async def create_api_key(
    body: ApiKeyCreate, chatbot: OwnedChatbot, keys: ApiKeyServiceDep, audit: AuditTrailDep
) -> ApiKeyCreated:
    """Creates a key; the secret is in this response only. 409 past MAX_API_KEYS_PER_CHATBOT."""
    return await keys.create(chatbot, body, audit)


@router.get("", responses=NOT_FOUND)
async def list_api_keys(
    chatbot: OwnedChatbot, keys: ApiKeyServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> Page[ApiKeyOut]:
    """The live keys, newest first, a page at a time."""
    return await keys.list(chatbot, cursor, limit)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64)],
    chatbot: OwnedChatbot,
    keys: ApiKeyServiceDep,
    audit: AuditTrailDep,
) -> None:
    await keys.revoke(chatbot, key_id, audit)
