"""WebSocket connections of one process: limits, topics, bounded send queues, fan-out, and
revocation: an owner's socket whose access was revoked (password change, suspension) is closed
before it gets another notification, and by a periodic sweep while it is quiet."""

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pymongo.errors import PyMongoError
from starlette.websockets import WebSocket, WebSocketState

from app.core.events import CHANNEL_PREFIX
from app.handoff.events import CONVERSATION_CHANNEL_PREFIX
from app.realtime.metrics import WS_CONNECTIONS, WS_DROPPED, WS_FANOUT_LATENCY, WS_MESSAGES

logger = logging.getLogger(__name__)
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
TOPICS = frozenset({"notifications", "status", "chat"})
REVOKED = "access revoked (password changed or account suspended); sign in again"

# Whether an owner's access token of this version is still honoured (user id, token version).
AccessCheck = Callable[[str, int], Awaitable[bool]]


@dataclass(eq=False)
class Connection:
    socket: WebSocket
    user_id: str | None  # None for a widget visitor
    chatbot_id: str | None  # the public bot a visitor talks to
    queue: asyncio.Queue[str]
    token_version: int | None = None  # an owner's, as signed in
    topics: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)  # a visitor's followed conversations
    sender: asyncio.Task[None] | None = None
    closing: bool = False

    def offer(self, text: str) -> bool:
        """Queues an encoded message; False when the client is too slow to keep up."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True


class Hub:
    def __init__(self, max_connections: int, max_per_user: int, queue_size: int) -> None:
        self._max = max_connections
        self._max_per_user = max_per_user
        self._queue_size = queue_size
        self._connections: set[Connection] = set()
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._by_conversation: dict[str, set[Connection]] = defaultdict(set)
        self.last_status: dict[str, object] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._access_check: AccessCheck | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def watch_access(self, check: AccessCheck, interval: float) -> None:
        """Checks owners' sockets with `check` before each notification and every `interval`
        seconds; the first call in a process installs it, later ones change nothing."""
        if self._access_check is None:
            self._access_check = check
            self._sweeper = asyncio.create_task(self._sweep(interval))

    def admit(
        self,
        socket: WebSocket,
        user_id: str | None,
        chatbot_id: str | None,
        token_version: int | None = None,
    ) -> tuple[Connection | None, int, str]:
        """A registered connection, or None with the close code and reason."""
        if len(self._connections) >= self._max:
            return None, TRY_AGAIN_LATER, "server at its WebSocket capacity, retry later"
        if user_id is not None and len(self._by_user.get(user_id, ())) >= self._max_per_user:
            return None, POLICY_VIOLATION, "too many connections for this user"
        connection = Connection(
            socket, user_id, chatbot_id, asyncio.Queue(self._queue_size), token_version
        )
        self._connections.add(connection)
        if user_id is not None:
            self._by_user[user_id].add(connection)
        connection.sender = asyncio.create_task(self._send_loop(connection))
        WS_CONNECTIONS.inc()
        return connection, 0, ""

    def release(self, connection: Connection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        if connection.user_id is not None:
            mine = self._by_user[connection.user_id]
            mine.discard(connection)
            if not mine:
                del self._by_user[connection.user_id]
        for conversation_id in list(connection.conversations):
            self.unfollow(connection, conversation_id)
        if connection.sender is not None:
            connection.sender.cancel()
        WS_CONNECTIONS.dec()

    def follow(self, connection: Connection, conversation_id: str) -> None:
        """The connection gets the conversation's events (its access was checked by the caller)."""
        connection.conversations.add(conversation_id)
        self._by_conversation[conversation_id].add(connection)

    def unfollow(self, connection: Connection, conversation_id: str) -> None:
        connection.conversations.discard(conversation_id)
        followers = self._by_conversation.get(conversation_id)
        if followers is not None:
            followers.discard(connection)
            if not followers:
                del self._by_conversation[conversation_id]

    def send(self, connection: Connection, message: dict[str, object]) -> None:
        self._send_text(connection, json.dumps(message, default=str))

    def _send_text(self, connection: Connection, text: str) -> None:
        if not connection.offer(text):
            self.drop_slow(connection)

    def drop_slow(self, connection: Connection) -> None:
        WS_DROPPED.inc()
        logger.warning("dropping a slow WebSocket consumer (user %s)", connection.user_id)
        self._close_soon(connection, "too slow to keep up")

    def _close_soon(self, connection: Connection, reason: str) -> None:
        """Closes with 1008 in the background, so a fan-out does not wait for one socket."""
        task = asyncio.create_task(self.close(connection, POLICY_VIOLATION, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, connection: Connection, code: int, reason: str) -> None:
        if connection.closing:
            return
        connection.closing = True
        self.release(connection)
        if connection.socket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):  # the client went away meanwhile
                await connection.socket.close(code, reason)

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.gather(*(self.close(c, code, reason) for c in list(self._connections)))

    async def on_event(self, channel: str, event: dict[str, object]) -> None:
        """An owner event from any process: to that owner's sockets subscribed to it, once
        their access is confirmed (revoked ones are closed instead). A conversation's event
        (a handoff's) goes to the sockets following that conversation."""
        if channel.startswith(CONVERSATION_CHANNEL_PREFIX):
            self._on_conversation_event(channel.removeprefix(CONVERSATION_CHANNEL_PREFIX), event)
            return
        user_id = channel.removeprefix(CHANNEL_PREFIX + "user:")
        sent_at = event.pop("sent_at", None)
        subscribed = [
            connection
            for connection in self._by_user.get(user_id, ())
            if "notifications" in connection.topics
        ]
        if subscribed:
            # Encoded once for every subscriber.
            text = json.dumps(
                {"type": "event", "topic": "notifications", "data": event}, default=str
            )
            for connection in await self._still_allowed(subscribed):
                self._send_text(connection, text)
        if isinstance(sent_at, int | float):
            WS_FANOUT_LATENCY.observe(max(0.0, time.time() - sent_at))

    def _on_conversation_event(self, conversation_id: str, event: dict[str, object]) -> None:
        sent_at = event.pop("sent_at", None)
        followers = self._by_conversation.get(conversation_id)
        if followers:
            message = {
                "type": "event",
                "topic": "conversation",
                "conversation_id": conversation_id,
                "data": event,
            }
            text = json.dumps(message, default=str)
            for connection in list(followers):
                self._send_text(connection, text)
        if isinstance(sent_at, int | float):
            WS_FANOUT_LATENCY.observe(max(0.0, time.time() - sent_at))

    def push_status(self, status: dict[str, object]) -> None:
        self.last_status = status
        text = json.dumps({"type": "status", "data": status}, default=str)
        for connection in list(self._connections):
            if "status" in connection.topics:
                self._send_text(connection, text)

    async def _still_allowed(self, connections: Iterable[Connection]) -> list[Connection]:
        """The connections whose access holds; the revoked ones are being closed. One check per
        user and token version; when the check fails (database trouble) nobody is confirmed."""
        check = self._access_check
        connections = list(connections)
        if check is None:
            return connections
        verdicts: dict[tuple[str, int], bool] = {}
        allowed: list[Connection] = []
        for connection in connections:
            if connection.user_id is None or connection.token_version is None:
                allowed.append(connection)
                continue
            key = (connection.user_id, connection.token_version)
            if key not in verdicts:
                try:
                    verdicts[key] = await check(*key)
                except PyMongoError as error:
                    logger.warning("could not confirm WebSocket access: %s", error)
                    return []
            if verdicts[key]:
                allowed.append(connection)
            elif not connection.closing:
                self._close_soon(connection, REVOKED)
        return allowed

    async def _sweep(self, interval: float) -> None:
        """Closes owners' sockets whose access was revoked while they were quiet."""
        while True:
            await asyncio.sleep(interval)
            owners = [c for c in self._connections if c.user_id is not None]
            try:
                await self._still_allowed(owners)
            except Exception:
                logger.exception("the WebSocket access sweep failed; it runs again")

    @staticmethod
    async def _send_loop(connection: Connection) -> None:
        while True:
            text = await connection.queue.get()
            try:
                await connection.socket.send_text(text)
            except (RuntimeError, OSError):
                return
            WS_MESSAGES.labels("out").inc()


def worker_id() -> int:
    return os.getpid()
