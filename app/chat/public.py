"""The embeddable widget's endpoints: public bots only, no account, visitor sessions, CORS for
the bot's allowed origins, and the stricter `public` rate limit (the /api/public/ prefix)."""

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response, status
from fastapi.responses import StreamingResponse

from app.chat.access import visitor_conversation
from app.chat.dependencies import ChatServiceDep, ConversationServiceDep
from app.chat.schemas import (
    ChatResponse,
    MessageOut,
    PublicChatbot,
    PublicChatRequest,
    PublicFeedback,
)
from app.chat.sse import SSE_CONTENT, sse_response
from app.chatbots.cors import Origin, allow_origin, answer_preflight
from app.chatbots.dependencies import PublicBot
from app.core.errors import problem_responses

router = APIRouter(prefix="/public/chatbots/{chatbot_id}", tags=["widget"])


@router.options(
    "/messages/{message_id}/feedback",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
@router.options("/chat", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
@router.options("", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
async def preflight(chatbot: PublicBot, response: Response, origin: Origin = None) -> None:
    answer_preflight(response, origin, "GET, POST, OPTIONS")


@router.get("", responses=problem_responses(403, 404))
async def widget_config(
    chatbot: PublicBot, response: Response, origin: Origin = None
) -> PublicChatbot:
    allow_origin(response, origin)
    return PublicChatbot.model_validate(chatbot)


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={**problem_responses(403, 404, 422, 429, 502), 200: {"content": SSE_CONTENT}},
)
async def widget_chat(
    body: PublicChatRequest,
    chatbot: PublicBot,
    service: ChatServiceDep,
    response: Response,
    origin: Origin = None,
    accept: Annotated[str, Header()] = "application/json",
) -> ChatResponse | StreamingResponse:
    """A visitor's message; the same answer and events as the owner's chat."""
    conversation = await visitor_conversation(service, chatbot, body)
    if body.stream or "text/event-stream" in accept:
        streaming = sse_response(service.events(chatbot, body, conversation))
        allow_origin(streaming, origin)
        return streaming
    allow_origin(response, origin)
    return await service.answer_in(chatbot, body, conversation)


@router.post("/messages/{message_id}/feedback", responses=problem_responses(403, 404, 422, 429))
async def widget_feedback(
    message_id: Annotated[str, Path(max_length=64)],
    body: PublicFeedback,
    chatbot: PublicBot,
    service: ConversationServiceDep,
    response: Response,
    origin: Origin = None,
) -> MessageOut:
    """A visitor's thumbs up or down on an answer in one of their own conversations."""
    allow_origin(response, origin)
    return await service.visitor_feedback(chatbot, message_id, body)
