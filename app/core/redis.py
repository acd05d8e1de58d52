"""The Redis client: created in the lifespan (after fork); absent when REDIS_URL is not set."""

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from app.core.config import Settings

RedisClient = Redis


def create_redis_client(settings: Settings) -> RedisClient | None:
    """Builds the pooled async client, or None: each Redis feature then uses its in-process form."""
    if settings.redis_url is None:
        return None
    return Redis.from_url(
        str(settings.redis_url),
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        decode_responses=False,
    )
