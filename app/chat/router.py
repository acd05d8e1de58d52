"""Chat with a bot: JSON, or Server-Sent Events when asked."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse

from app.audit.dependencies import AuditTrailDep
from app.audit.documents import AuditAction
from app.chat.dependencies import ChatServiceDep, ConversationServiceDep
from app.chat.schemas import (
    ChatRequest,
    ChatResponse,
    ConversationDetail,
    ConversationOut,
    Feedback,
    MessageOut,
)
from app.chat.sse import SSE_CONTENT, sse_response
from app.chatbots.dependencies import BotCaller, OwnedChatbot
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["chat"])
ItemId = Annotated[str, Path(max_length=64)]


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        **problem_responses(401, 404, 422, 429, 502),
        200: {"content": SSE_CONTENT},
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
        return sse_response(events)
    return await service.answer(chatbot, body)


@router.get("/conversations", responses=problem_responses(404))
async def list_conversations(
    chatbot: OwnedChatbot,
    service: ConversationServiceDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ConversationOut]:
    """The bot's conversations, most recent first."""
    return await service.list(chatbot, cursor, limit)


@router.get(
    "/conversations/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines (`format=jsonl`) or CSV (`format=csv`)",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(404),
    },
)
async def export_conversations(
    chatbot: OwnedChatbot,
    service: ConversationServiceDep,
    audit: AuditTrailDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """Every message of the bot, streamed as JSON Lines or CSV."""
    await audit.record(
        AuditAction.CONVERSATIONS_EXPORT,
        actor_id=chatbot["user_id"],
        target=f"chatbot:{chatbot['id']}",
        owner_id=chatbot["user_id"],
        details={"format": format},
    )
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    filename = f"conversations-{chatbot['id']}.{format}"
    return StreamingResponse(
        service.export(chatbot, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/conversations/{conversation_id}", responses=problem_responses(404))
async def get_conversation(
    conversation_id: ItemId,
    chatbot: OwnedChatbot,
    service: ConversationServiceDep,
    after: Annotated[datetime | None, Query(description="From the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationDetail:
    """A conversation with its messages, oldest first, paginated."""
    return await service.detail(chatbot, conversation_id, after, limit)


@router.delete(
    "/conversations/{conversation_id}", status_code=204, responses=problem_responses(404)
)
async def delete_conversation(
    conversation_id: ItemId, chatbot: OwnedChatbot, service: ConversationServiceDep
) -> None:
    await service.delete(chatbot, conversation_id)


@router.post("/messages/{message_id}/feedback", responses=problem_responses(401, 404, 422))
async def give_feedback(
    message_id: ItemId, body: Feedback, chatbot: BotCaller, service: ConversationServiceDep
) -> MessageOut:
    """Thumbs up or down, with an optional comment, on one of the bot's answers."""
    return await service.feedback(chatbot, message_id, body)
