"""Chatbot CRUD for their owners."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, status

from app.audit.dependencies import AuditTrailDep
from app.chatbots.dependencies import ChatbotServiceDep, OwnedChatbot
from app.chatbots.schemas import ChatbotCreate, ChatbotOut, ChatbotUpdate
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.users.dependencies import CurrentUser

NOT_FOUND = problem_responses(status.HTTP_404_NOT_FOUND)
router = APIRouter(prefix="/chatbots", tags=["chatbots"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=problem_responses(status.HTTP_409_CONFLICT)
)
async def create_chatbot(
    body: ChatbotCreate, user: CurrentUser, service: ChatbotServiceDep
) -> ChatbotOut:
    return await service.create(user, body)


@router.get("")
async def list_chatbots(
    user: CurrentUser,
    service: ChatbotServiceDep,
    q: Annotated[str | None, Query(max_length=100, description="Name contains")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ChatbotOut]:
    """The caller's chatbots, newest first."""
    return await service.list(user, q, cursor, limit)


@router.get("/{chatbot_id}", responses=NOT_FOUND)
async def get_chatbot(chatbot: OwnedChatbot) -> ChatbotOut:
    return ChatbotOut.model_validate(chatbot)


@router.patch("/{chatbot_id}", responses=NOT_FOUND)
async def update_chatbot(
    body: ChatbotUpdate, chatbot: OwnedChatbot, service: ChatbotServiceDep, audit: AuditTrailDep
) -> ChatbotOut:
    return await service.update(chatbot, body, audit)


@router.delete("/{chatbot_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_chatbot(
    chatbot: OwnedChatbot, service: ChatbotServiceDep, background: BackgroundTasks
) -> None:
    """Deletes the bot with its sources, chunks, conversations, messages and keys."""
    await service.delete(chatbot)
    background.add_task(service.purge, chatbot["id"])
