"""Chat with a bot: JSON, or Server-Sent Events when asked."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse

from app.chat.providers import OfflineProvider
from app.chat.repository import ConversationRepository
from app.chat.schemas import ChatEvent, ChatRequest, ChatResponse
from app.chat.service import ChatService
from app.chatbots.dependencies import BotCaller
from app.core.errors import problem_responses
from app.core.resources import ResourcesDep
from app.retrieval.dependencies import RetrievalServiceDep

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["chat"])


async def get_chat_service(resources: ResourcesDep, retrieval: RetrievalServiceDep) -> ChatService:
    return ChatService(ConversationRepository(resources.db), retrieval, OfflineProvider())


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        **problem_responses(401, 404, 422),
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
    },
)
async def chat(
    body: ChatRequest,
    chatbot: BotCaller,
    service: ChatServiceDep,
    accept: Annotated[str, Header()] = "application/json",
) -> ChatResponse | StreamingResponse:
    """Asks the bot. With `"stream": true` or `Accept: text/event-stream` the answer arrives as
    events: `start`, `token`…, `sources`, `end` (or `error`)."""
    if body.stream or "text/event-stream" in accept:
        conversation = await service.open_conversation(chatbot, body)
        events = service.events(chatbot, body, conversation)
        return StreamingResponse(
            _sse(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    return await service.answer(chatbot, body)


async def _sse(events: AsyncIterator[ChatEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event.sse()
    except Exception as error:
        yield ChatEvent(event="error", data={"message": f"the answer failed: {error}"}).sse()
