"""`/api/ws`: one JSON protocol for live chat, owner notifications and system status.

Connect with `?token=<access token>` (or an `Authorization: Bearer` header), or, for the widget,
`?chatbot_id=<public bot>&session_id=<visitor session>`. Client messages:
  {"type": "subscribe" | "unsubscribe", "topic": "notifications" | "status"}
  {"type": "subscribe" | "unsubscribe", "topic": "conversation", "conversation_id": "…"}
    (visitors, for one of their own conversations: its handoff's changes and the agent's
    messages)
  {"type": "agent_reply", "id"?: "<yours>", "chatbot_id": "…", "conversation_id": "…",
   "content": "…"} (the owner or an invited agent, in a handoff they claimed)
  {"type": "chat", "id": "<yours>", "chatbot_id": "…", "message": "…",
   "conversation_id"?: "…", "session_id"?: "…"}
  {"type": "ping"}
Server messages: welcome, subscribed, unsubscribed, pong, event (topic notifications, or topic
conversation with its conversation_id), status, agent_reply (the stored message), chat
(`event`: start, token, sources, handoff, end, error — the SSE events), error (the connection
stays).
Access is checked again on every client message: an owner whose password changed or whose account
was suspended, and a visitor whose bot is no longer public and active (or whose owner was
suspended), are closed with 1008. An owner's revoked socket is also closed before its next
notification and within WEBSOCKET_REVALIDATE_SECONDS while quiet.
"""

import asyncio
import json
import re
from collections.abc import Coroutine
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
from app.handoff.access import handoff_desk, visitor_owns_conversation
from app.handoff.schemas import AgentReply
from app.handoff.service import HandoffService
from app.realtime.hub import POLICY_VIOLATION, REVOKED, Connection, Hub, worker_id
from app.realtime.metrics import WS_MESSAGES
from app.users.access import user_for_access_token
from app.users.repository import UserRepository
from app.users.schemas import UserStatus

router = APIRouter(tags=["realtime"])
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FOLLOWED_CONVERSATIONS = 20


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a socket belongs to: an owner, or a widget visitor of one public bot."""

    user_id: str | None = None
    token_version: int | None = None  # of the owner's access token
    visitor_bot: str | None = None
    session_id: str | None = None  # a visitor's
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
        return Caller(visitor_bot=chatbot_id, session_id=session_id, origin=origin, address=address)
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
    elif kind in ("subscribe", "unsubscribe") and message.get("topic") == "conversation":
        _start(chats, _follow(hub, connection, container, caller, kind, message))
    elif kind in ("subscribe", "unsubscribe"):
        _subscription(hub, connection, kind, message.get("topic"))
    elif kind == "agent_reply":
        _start(chats, _agent_reply(hub, connection, container, caller, message))
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
                "subscribe, unsubscribe, chat, agent_reply or ping",
            },
        )


def _start(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    """Runs a client message's work beside the socket's loop (cancelled when it closes)."""
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _follow(
    hub: Hub,
    connection: Connection,
    container: Container,
    caller: Caller,
    kind: str,
    message: dict[str, Any],
) -> None:
    """A visitor follows (or stops following) one of their own conversations."""
    conversation_id = message.get("conversation_id")
    refusal: dict[str, object] = {
        "type": "error",
        "message": f"cannot {kind} to this conversation",
    }
    if not isinstance(conversation_id, str) or not conversation_id:
        hub.send(connection, refusal)
        return
    if kind == "unsubscribe":
        hub.unfollow(connection, conversation_id)
    else:
        if (
            caller.visitor_bot is None
            or caller.session_id is None
            or len(connection.conversations) >= MAX_FOLLOWED_CONVERSATIONS
        ):
            hub.send(connection, refusal)
            return
        try:
            owned = await visitor_owns_conversation(
                container.resources, caller.visitor_bot, caller.session_id, conversation_id
            )
        except PyMongoError:
            hub.send(connection, {"type": "error", "message": "could not check access; retry"})
            return
        if not owned:
            hub.send(connection, refusal)
            return
        hub.follow(connection, conversation_id)
    done: dict[str, object] = {
        "type": f"{kind}d",
        "topic": "conversation",
        "conversation_id": conversation_id,
    }
    hub.send(connection, done)


async def _agent_reply(
    hub: Hub, connection: Connection, container: Container, caller: Caller, message: dict[str, Any]
) -> None:
    """An agent's (or the owner's) message in a handoff they claimed: what POST
    /chatbots/{id}/handoffs/{conversation_id}/messages does."""
    request_id = message.get("id")

    def fail(reason: str) -> None:
        hub.send(connection, {"type": "error", "id": request_id, "message": reason})

    if caller.user_id is None:
        fail("only the bot's owner and its agents may reply in a handoff")
        return
    if container.settings.rate_limit_enabled:
        decision = await container.rate_limiter.hit(caller.rate_identity, caller.rate_class)
        if not decision.allowed:
            fail(f"rate limited; retry in {decision.retry_after} s")
            return
    chatbot_id, conversation_id = message.get("chatbot_id"), message.get("conversation_id")
    try:
        reply = AgentReply.model_validate({"content": message.get("content")})
    except ValidationError as error:
        fail(f"invalid agent_reply: {error.errors()[0]['msg']}")
        return
    if not isinstance(chatbot_id, str) or not isinstance(conversation_id, str):
        fail("agent_reply needs chatbot_id and conversation_id")
        return
    resources = container.resources
    try:
        user = await UserRepository(resources).by_id(caller.user_id)
        if user is None:
            fail("no such chatbot")
            return
        desk = await handoff_desk(resources, user, chatbot_id)
        stored = await HandoffService(resources).reply(desk, conversation_id, reply.content)
    except DomainError as error:
        fail(error.detail or error.title)
        return
    hub.send(
        connection,
        {"type": "agent_reply", "id": request_id, "message": stored.model_dump(mode="json")},
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
        # As REST answers it: a refused quota names itself and when it resets.
        failed: dict[str, object] = {"message": error.detail or error.title, **error.extensions}
        if error.headers and "Retry-After" in error.headers:
            failed["retry_after"] = int(error.headers["Retry-After"])
        reply("error", failed)
