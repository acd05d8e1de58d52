"""Chat with a bot: JSON, or Server-Sent Events when asked."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import State

from app.chat.providers import AnswerProvider, OfflineProvider, OpenAICompatibleProvider
from app.chat.repository import ConversationRepository
from app.chat.schemas import (
    ChatEvent,
    ChatRequest,
    ChatResponse,
    ConversationDetail,
    ConversationOut,
    Feedback,
    MessageOut,
)
from app.chat.service import ChatService, ConversationService
from app.chatbots.dependencies import BotCaller, OwnedChatbot
from app.core.db import Document
from app.core.errors import problem_responses
from app.core.resources import Resources, ResourcesDep
from app.core.schemas import Cursor, Limit, Page
from app.retrieval.embeddings import EmbeddingsClient
from app.retrieval.service import RetrievalService
from app.sources.repository import SourceRepository

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["chat"])


def build_chat_service(state: State, resources: Resources) -> ChatService:
    """The chat service over a request's or a WebSocket's app state."""
    http: httpx.AsyncClient = state.http
    settings = resources.settings
    retrieval = RetrievalService(
        SourceRepository(resources.db),
        state.retrieval_indexes,
        EmbeddingsClient.configured(http, settings),
    )

    def provider_for(chatbot: Document) -> AnswerProvider:
        model = chatbot["model"]
        if model["provider"] != "openai" or settings.llm_base_url is None:
            return OfflineProvider()
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAICompatibleProvider(
            http,
            str(settings.llm_base_url),
            key,
            model["model"] or settings.llm_model,
            model["temperature"],
            settings.llm_timeout_seconds,
        )

    conversations = ConversationRepository(resources.db, resources.reads)
    return ChatService(conversations, retrieval, provider_for, resources.events)


async def get_chat_service(request: Request, resources: ResourcesDep) -> ChatService:
    return build_chat_service(request.app.state, resources)


async def get_conversation_service(resources: ResourcesDep) -> ConversationService:
    conversations = ConversationRepository(resources.db, resources.reads)
    return ConversationService(conversations, resources.events)


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
ItemId = Annotated[str, Path(max_length=64)]


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
            sse_stream(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
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


@router.get("/conversations/export", responses=problem_responses(404))
async def export_conversations(
    chatbot: OwnedChatbot,
    service: ConversationServiceDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """Every message of the bot, streamed as JSON Lines or CSV."""
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


async def sse_stream(events: AsyncIterator[ChatEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event.sse()
    except Exception as error:
        yield ChatEvent(event="error", data={"message": f"the answer failed: {error}"}).sse()
