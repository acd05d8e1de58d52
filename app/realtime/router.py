"""`/api/ws`: one JSON protocol for live chat, owner notifications and system status.

Connect with `?token=<access token>` (or an `Authorization: Bearer` header), or, for the widget,
`?chatbot_id=<public bot>&session_id=<visitor session>`. Client messages:
  {"type": "subscribe" | "unsubscribe", "topic": "notifications" | "status"}
  {"type": "chat", "id": "<yours>", "chatbot_id": "…", "message": "…",
   "conversation_id"?: "…", "session_id"?: "…"}
  {"type": "ping"}
Server messages: welcome, subscribed, unsubscribed, pong, event (topic notifications), status,
chat (`event`: start, token, sources, end, error — the SSE events), error (the connection stays).
"""

import asyncio
import json
import re
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from app.chat.router import build_chat_service
from app.chat.schemas import ChatRequest
from app.chat.service import ConversationNotFoundError
from app.chatbots.repository import DELETING, ChatbotRepository
from app.core.errors import DomainError
from app.core.metrics import WS_MESSAGES
from app.core.resources import Resources
from app.core.security import decode_access_token
from app.realtime.hub import POLICY_VIOLATION, Connection, Hub, worker_id
from app.users.repository import UserRepository
from app.users.schemas import UserStatus

router = APIRouter(tags=["realtime"])
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def _identify(socket: WebSocket, resources: Resources) -> tuple[str | None, str | None, str]:
    """(user_id, visitor's chatbot_id, refusal): one of the first two, or why neither."""
    params = socket.query_params
    header = socket.headers.get("authorization", "")
    token = params.get("token") or (header[7:] if header.lower().startswith("bearer ") else None)
    if token:
        claims = decode_access_token(resources.settings, token)
        users = UserRepository(resources.db, resources.cache, resources.reads)
        user = await users.by_id(claims.user_id) if claims else None
        if (
            claims is None
            or user is None
            or user["token_version"] != claims.token_version
            or user["status"] != UserStatus.ACTIVE
        ):
            return None, None, "invalid or expired access token"
        return user["id"], None, ""
    chatbot_id, session_id = params.get("chatbot_id"), params.get("session_id")
    if chatbot_id and session_id and _SESSION.match(session_id):
        chatbots = ChatbotRepository(resources.db, resources.cache, resources.reads)
        chatbot = await chatbots.by_id(chatbot_id)
        origin = socket.headers.get("origin")
        if (
            chatbot is None
            or chatbot["visibility"] != "public"
            or chatbot["status"] != "active"
            or (origin is not None and origin not in chatbot["allowed_origins"])
        ):
            return None, None, "no such public chatbot for this origin"
        return None, chatbot_id, ""
    return None, None, "authentication required: token, or chatbot_id and session_id"


@router.websocket("/ws")
async def websocket(socket: WebSocket) -> None:
    resources: Resources = socket.app.state.resources
    hub: Hub = socket.app.state.hub
    await socket.accept()
    user_id, visitor_bot, refusal = await _identify(socket, resources)
    if refusal:
        await socket.close(POLICY_VIOLATION, refusal)
        return
    connection, code, reason = hub.admit(socket, user_id, visitor_bot)
    if connection is None:
        await socket.close(code, reason)
        return
    hub.send(connection, {"type": "welcome", "worker": worker_id(), "visitor": user_id is None})
    chats: set[asyncio.Task[None]] = set()
    try:
        while True:
            text = await socket.receive_text()
            WS_MESSAGES.labels("in").inc()
            await _handle(socket, hub, connection, resources, text, chats)
    except WebSocketDisconnect:
        pass
    finally:
        for task in chats:
            task.cancel()
        hub.release(connection)


async def _handle(
    socket: WebSocket,
    hub: Hub,
    connection: Connection,
    resources: Resources,
    text: str,
    chats: set[asyncio.Task[None]],
) -> None:
    try:
        message: Any = json.loads(text)
        kind = message["type"] if isinstance(message, dict) else None
    except (ValueError, KeyError):
        kind = None
    if kind == "ping":
        hub.send(connection, {"type": "pong"})
    elif kind in ("subscribe", "unsubscribe"):
        topic = message.get("topic")
        if topic not in ("notifications", "status") or (
            topic == "notifications" and connection.user_id is None
        ):
            hub.send(connection, {"type": "error", "message": f"cannot {kind} to {topic!r}"})
            return
        if kind == "subscribe":
            connection.topics.add(topic)
        else:
            connection.topics.discard(topic)
        hub.send(connection, {"type": f"{kind}d", "topic": topic})
        if kind == "subscribe" and topic == "status" and hub.last_status is not None:
            hub.send(connection, {"type": "status", "data": hub.last_status})
    elif kind == "chat":
        task = asyncio.create_task(_chat(socket, hub, connection, resources, message))
        chats.add(task)
        task.add_done_callback(chats.discard)
    else:
        hub.send(
            connection,
            {
                "type": "error",
                "message": "expected a JSON object with a known type: "
                "subscribe, unsubscribe, chat or ping",
            },
        )


async def _chat(
    socket: WebSocket,
    hub: Hub,
    connection: Connection,
    resources: Resources,
    message: dict[str, Any],
) -> None:
    request_id = message.get("id")

    def reply(event: str, data: dict[str, object]) -> None:
        hub.send(connection, {"type": "chat", "id": request_id, "event": event, "data": data})

    try:
        request = ChatRequest.model_validate(
            {k: v for k, v in message.items() if k not in ("type", "id", "chatbot_id")}
        )
    except ValidationError as error:
        reply("error", {"message": f"invalid chat message: {error.errors()[0]['msg']}"})
        return
    chatbot_id = message.get("chatbot_id")
    chatbots = ChatbotRepository(resources.db, resources.cache, resources.reads)
    chatbot = await chatbots.by_id(chatbot_id) if isinstance(chatbot_id, str) else None
    allowed = (
        chatbot is not None
        and chatbot["status"] != DELETING
        and (
            chatbot["user_id"] == connection.user_id
            if connection.user_id is not None
            else chatbot["id"] == connection.chatbot_id
        )
    )
    if not allowed or chatbot is None:
        reply("error", {"message": "no such chatbot"})
        return
    if connection.user_id is None and not request.session_id:
        reply("error", {"message": "a visitor's chat needs a session_id"})
        return
    service = build_chat_service(socket.app.state, resources)
    try:
        conversation = await service.open_conversation(chatbot, request)
        if connection.user_id is None and conversation["session_id"] != request.session_id:
            raise ConversationNotFoundError()
        async for event in service.events(chatbot, request, conversation):
            reply(event.event, event.data)
    except DomainError as error:
        reply("error", {"message": error.detail or error.title})
