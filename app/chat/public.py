"""The embeddable widget's endpoints: public bots only, no account, visitor sessions, CORS for
the bot's allowed origins, and the stricter `public` rate limit (the /api/public/ prefix)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response, status
from fastapi.responses import StreamingResponse

from app.chat.router import ChatServiceDep, sse_stream
from app.chat.schemas import ChatResponse, PublicChatbot, PublicChatRequest
from app.chat.service import ConversationNotFoundError
from app.chatbots.repository import ChatbotRepository
from app.chatbots.service import ChatbotNotFoundError
from app.core.db import Document
from app.core.errors import problem_responses
from app.core.resources import ResourcesDep
from app.users.errors import ForbiddenError

router = APIRouter(prefix="/public/chatbots/{chatbot_id}", tags=["widget"])
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type, Accept, X-Request-ID"


async def public_chatbot(
    chatbot_id: Annotated[str, Path(max_length=64)],
    resources: ResourcesDep,
    origin: Annotated[str | None, Header()] = None,
) -> Document:
    """A public, active bot; a browser page from another origin than the bot allows is refused."""
    chatbot = await ChatbotRepository(resources.db, resources.cache, resources.reads).by_id(
        chatbot_id
    )
    if chatbot is None or chatbot["visibility"] != "public" or chatbot["status"] != "active":
        raise ChatbotNotFoundError()
    if origin is not None and origin not in chatbot["allowed_origins"]:
        raise ForbiddenError(f"This chatbot does not accept requests from {origin}")
    return chatbot


PublicBot = Annotated[Document, Depends(public_chatbot)]


def _allow(response: Response, origin: str | None) -> None:
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


@router.options("/chat", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
@router.options("", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
async def preflight(
    chatbot: PublicBot, response: Response, origin: Annotated[str | None, Header()] = None
) -> None:
    _allow(response, origin)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"


@router.get("", responses=problem_responses(403, 404))
async def widget_config(
    chatbot: PublicBot, response: Response, origin: Annotated[str | None, Header()] = None
) -> PublicChatbot:
    _allow(response, origin)
    return PublicChatbot(**chatbot)


@router.post("/chat", response_model=ChatResponse, responses=problem_responses(403, 404, 422, 429))
async def widget_chat(
    body: PublicChatRequest,
    chatbot: PublicBot,
    service: ChatServiceDep,
    response: Response,
    origin: Annotated[str | None, Header()] = None,
    accept: Annotated[str, Header()] = "application/json",
) -> ChatResponse | StreamingResponse:
    """A visitor's message; the same answer and events as the owner's chat."""
    conversation = await service.open_conversation(chatbot, body)
    if conversation["session_id"] != body.session_id:
        raise ConversationNotFoundError()  # another visitor's conversation
    if body.stream or "text/event-stream" in accept:
        streaming = StreamingResponse(
            sse_stream(service.events(chatbot, body, conversation)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
        _allow(streaming, origin)
        return streaming
    _allow(response, origin)
    return await service.answer_in(chatbot, body, conversation)
