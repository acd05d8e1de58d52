"""Owner events (ingestion progress, new conversations, feedback) on Redis pub/sub, for the
real-time notifications; best effort: the stored state is the record."""

import json
import logging

from redis.exceptions import RedisError

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)


def user_channel(user_id: str) -> str:
    return f"botsmith:events:user:{user_id}"


async def publish_event(redis: RedisClient | None, user_id: str, event: dict[str, object]) -> None:
    if redis is None:
        return
    try:
        await redis.publish(user_channel(user_id), json.dumps(event, default=str))
    except RedisError as error:
        logger.warning("could not publish a %s event: %s", event.get("type"), error)
