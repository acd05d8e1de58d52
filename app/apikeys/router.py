"""A chatbot's API keys, managed by its owner."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.apikeys.dependencies import ApiKeyServiceDep
from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses

NOT_FOUND = problem_responses(status.HTTP_404_NOT_FOUND)
router = APIRouter(prefix="/chatbots/{chatbot_id}/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def create_api_key(
    body: ApiKeyCreate, chatbot: OwnedChatbot, keys: ApiKeyServiceDep
) -> ApiKeyCreated:
    """Creates a key; the secret is in this response only."""
    return await keys.create(chatbot, body)


@router.get("", responses=NOT_FOUND)
async def list_api_keys(chatbot: OwnedChatbot, keys: ApiKeyServiceDep) -> list[ApiKeyOut]:
    return await keys.list(chatbot)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64)], chatbot: OwnedChatbot, keys: ApiKeyServiceDep
) -> None:
    await keys.revoke(chatbot, key_id)
