"""`/api/ws`: one JSON protocol for live chat, owner notifications and system status.

Connect with `?token=<access token>` (or an `Authorization: Bearer` header), or, for the widget,
`?chatbot_id=<public bot>&session_id=<visitor session>`. Client messages:
  {"type": "subscribe" | "unsubscribe", "topic": "notifications" | "status"}
  {"type": "chat", "id": "<yours>", "chatbot_id": "…", "message": "…",
   "conversation_id"?: "…", "session_id"?: "…"}
  {"type": "ping"}
Server messages: welcome, subscribed, unsubscribed, pong, event (topic notifications), status,
chat (`event`: start, token, sources, end, error — the SSE events), error (the connection stays).
Access is checked again on every client message: an owner whose password changed or whose account
was suspended, and a visitor whose bot is no longer public and active (or whose owner was
suspended), are closed with 1008. An owner's revoked socket is also closed before its next
notification and within WEBSOCKET_REVALIDATE_SECONDS while quiet.
"""

import asyncio
import json
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from starlette.websockets import WebSocketDisconnect

from app.chat.access import visitor_conversation
from app.chat.dependencies import chat_service
from app.chat.schemas import ChatRequest
from app.chatbots.access import owned_chatbot, public_chatbot
from app.chatbots.documents import ChatbotDocument
from app.container import Container, container_of
from app.core.errors import DomainError
from app.core.middleware import ClientIdentity
from app.core.resources import Resources
from app.realtime.hub import POLICY_VIOLATION, REVOKED, Connection, Hub, worker_id
from app.realtime.metrics import WS_MESSAGES
from app.users.access import user_for_access_token
from app.users.repository import UserRepository
from app.users.schemas import UserStatus

router = APIRouter(tags=["realtime"])
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a socket belongs to: an owner, or a widget visitor of one public bot."""

    user_id: str | None = None
    token_version: int | None = None  # of the owner's access token
    visitor_bot: str | None = None
    origin: str | None = None
    address: str = ""

    @property
    def rate_class(self) -> str:
        return "default" if self.user_id is not None else "public"

    @property
    def rate_identity(self) -> str:
        """The bucket REST uses for the same caller, so a socket shares its limits."""
        who = f"user:{self.user_id}" if self.user_id is not None else f"ip:{self.address}"
        return f"{self.rate_class}:{who}"


class RefusedError(Exception):
    """The socket may not connect; the message is the close reason."""


async def _identify(socket: WebSocket, container: Container) -> Caller:
    """The caller, by the same access rules as HTTP; RefusedError says why not."""
    resources = container.resources
    params = socket.query_params
    header = socket.headers.get("authorization", "")
    token = params.get("token") or (header[7:] if header.lower().startswith("bearer ") else None)
    origin = socket.headers.get("origin")
    address = ClientIdentity(resources.settings).client_address(socket.scope)
    if token:
        try:
            user = await user_for_access_token(resources, token)
        except DomainError:
            raise RefusedError("invalid or expired access token") from None
        return Caller(user_id=user["id"], token_version=user["token_version"], address=address)
    chatbot_id, session_id = params.get("chatbot_id"), params.get("session_id")
    if chatbot_id and session_id and _SESSION.match(session_id):
        try:
            await public_chatbot(resources, chatbot_id, origin)
        except DomainError:
            raise RefusedError("no such public chatbot for this origin") from None
        return Caller(visitor_bot=chatbot_id, origin=origin, address=address)
    raise RefusedError("authentication required: token, or chatbot_id and session_id")


async def _token_honoured(resources: Resources, user_id: str, token_version: int) -> bool:
    """What user_for_access_token checks after the signature, for a socket signed in earlier:
    the account is still active and its token version unchanged. Expiry is checked at connect
    only: a socket may outlive its token, not its revocation."""
    user = await UserRepository(resources).by_id(user_id)
    return (
        user is not None
        and user["token_version"] == token_version
        and user["status"] == UserStatus.ACTIVE
    )


async def _revoked(container: Container, caller: Caller) -> str | None:
    """Why this socket may no longer be used (the close reason), or None while it may."""
    resources = container.resources
    if caller.user_id is not None and caller.token_version is not None:
        if not await _token_honoured(resources, caller.user_id, caller.token_version):
            return REVOKED
    elif caller.visitor_bot is not None:
        try:
            await public_chatbot(resources, caller.visitor_bot, caller.origin)
        except DomainError:
            return "this chatbot is no longer available to visitors"
    return None


async def _chatbot_for(container: Container, caller: Caller, chatbot_id: object) -> ChatbotDocument:
    """The bot a chat message names, if this caller may use it (checked on every message)."""
    resources = container.resources
    if not isinstance(chatbot_id, str):
        raise RefusedError("no such chatbot")
    try:
        if caller.user_id is not None:
            return await owned_chatbot(resources, caller.user_id, chatbot_id)
        if chatbot_id == caller.visitor_bot:
            return await public_chatbot(resources, chatbot_id, caller.origin)
    except DomainError:
        pass
    raise RefusedError("no such chatbot")


@router.websocket("/ws")
async def websocket(socket: WebSocket) -> None:
    container = container_of(socket)
    hub = container.hub
    await socket.accept()
    try:
        caller = await _identify(socket, container)
    except RefusedError as refusal:
        await socket.close(POLICY_VIOLATION, str(refusal))
        return
    connection, code, reason = hub.admit(
        socket, caller.user_id, caller.visitor_bot, caller.token_version
    )
    if connection is None:
        await socket.close(code, reason)
        return
    if caller.user_id is not None:
        hub.watch_access(
            partial(_token_honoured, container.resources),
            container.settings.websocket_revalidate_seconds,
        )
    hub.send(
        connection, {"type": "welcome", "worker": worker_id(), "visitor": caller.user_id is None}
    )
    chats: set[asyncio.Task[None]] = set()
    try:
        while True:
            text = await socket.receive_text()
            WS_MESSAGES.labels("in").inc()
            try:
                revoked = await _revoked(container, caller)
            except PyMongoError:
                hub.send(connection, {"type": "error", "message": "could not check access; retry"})
                continue
            if revoked is not None:
                await hub.close(connection, POLICY_VIOLATION, revoked)
                break
            _handle(hub, connection, container, caller, text, chats)
    except WebSocketDisconnect:
        pass
    finally:
        for task in chats:
            task.cancel()
        hub.release(connection)


def _handle(
    hub: Hub,
    connection: Connection,
    container: Container,
    caller: Caller,
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
        _subscription(hub, connection, kind, message.get("topic"))
    elif kind == "chat":
        if len(chats) >= container.settings.websocket_max_concurrent_chats:
            error: dict[str, object] = {
                "message": "too many chats at once on this connection; wait for one"
            }
            _chat_reply(hub, connection, message.get("id"), "error", error)
            return
        task = asyncio.create_task(_chat(hub, connection, container, caller, message))
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


def _subscription(hub: Hub, connection: Connection, kind: str, topic: object) -> None:
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


def _chat_reply(
    hub: Hub, connection: Connection, request_id: object, event: str, data: dict[str, object]
) -> None:
    hub.send(connection, {"type": "chat", "id": request_id, "event": event, "data": data})


async def _chat(
    hub: Hub, connection: Connection, container: Container, caller: Caller, message: dict[str, Any]
) -> None:
    request_id = message.get("id")

    def reply(event: str, data: dict[str, object]) -> None:
        _chat_reply(hub, connection, request_id, event, data)

    # Every message counts against the caller's limits, exactly as a REST chat would.
    if container.settings.rate_limit_enabled:
        decision = await container.rate_limiter.hit(caller.rate_identity, caller.rate_class)
        if not decision.allowed:
            retry = decision.retry_after
            reply("error", {"message": f"rate limited; retry in {retry} s", "retry_after": retry})
            return
    try:
        request = ChatRequest.model_validate(
            {k: v for k, v in message.items() if k not in ("type", "id", "chatbot_id")}
        )
    except ValidationError as error:
        reply("error", {"message": f"invalid chat message: {error.errors()[0]['msg']}"})
        return
    try:
        chatbot = await _chatbot_for(container, caller, message.get("chatbot_id"))
    except RefusedError as refusal:
        reply("error", {"message": str(refusal)})
        return
    service = chat_service(container)
    try:
        if caller.user_id is None:
            conversation = await visitor_conversation(service, chatbot, request)
        else:
            conversation = await service.open_conversation(chatbot, request)
        async for event in service.events(chatbot, request, conversation):
            reply(event.event, event.data)
    except DomainError as error:
        reply("error", {"message": error.detail or error.title})
