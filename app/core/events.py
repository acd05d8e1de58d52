"""Owner events (ingestion progress, new conversations, feedback) and their fan-out.

Publishers call publish_event; every process's EventBus delivers to its local subscribers
(WebSockets). With Redis the event travels through pub/sub, so it reaches every worker and pod;
without Redis it stays in the process. Best effort: the stored state is the record.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from app.core.redis import RedisClient, publish, subscription

logger = logging.getLogger(__name__)
CHANNEL_PREFIX = "botsmith:events:"
RELAY_POLL_SECONDS = 1.0

Listener = Callable[[str, dict[str, object]], Awaitable[None]]


def user_channel(user_id: str) -> str:
    return f"{CHANNEL_PREFIX}user:{user_id}"


class EventBus:
    """One per process: publishes events and hands every event to the local listeners."""

    def __init__(self, redis: RedisClient | None) -> None:
        self._redis = redis
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, channel: str, event: dict[str, object]) -> None:
        event = {**event, "sent_at": time.time()}
        if self._redis is None:
            await self._deliver(channel, event)
            return
        try:
            await publish(self._redis, channel, json.dumps(event, default=str))
        except RedisError as error:
            logger.warning("could not publish a %s event: %s", event.get("type"), error)

    def start(self) -> None:
        if self._redis is not None and self._task is None:
            self._task = asyncio.create_task(self._relay())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _relay(self) -> None:
        """Redis pub/sub → local listeners; reconnects after Redis trouble."""
        assert self._redis is not None
        while True:
            try:
                async with subscription(self._redis) as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    while True:
                        # A bounded wait: a quiet channel is not a lost connection (listen()
                        # would hit the client's socket timeout and drop events while it
                        # reconnects).
                        message = await pubsub.get_message(timeout=RELAY_POLL_SECONDS)
                        if message is None or message["type"] != "pmessage":
                            continue
                        channel = message["channel"].decode()
                        await self._deliver(channel, json.loads(message["data"]))
            except (RedisError, OSError) as error:
                logger.warning("event relay lost Redis, reconnecting: %s", error)
                await asyncio.sleep(1)

    async def _deliver(self, channel: str, event: dict[str, object]) -> None:
        for listener in self._listeners:
            try:
                await listener(channel, event)
            except Exception:
                logger.exception("an event listener failed")


async def publish_event(bus: EventBus | None, user_id: str, event: dict[str, object]) -> None:
    if bus is not None:
        await bus.publish(user_channel(user_id), event)
