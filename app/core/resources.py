"""What the lifespan opens for one worker process, reachable from requests through app.state."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import MongoClient, MongoDatabase, create_mongo_client
from app.core.events import EventBus
from app.core.ratelimit import RateLimiter
from app.core.read_policy import ReadRouter
from app.core.redis import RedisCircuit, RedisClient, create_redis_client


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    mongo: MongoClient
    db: MongoDatabase
    redis: RedisClient | None
    cache: Cache
    rate_limiter: RateLimiter
    reads: ReadRouter
    events: EventBus


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a thread pool, which
# costs more than everything else a simple request does.
def open_resources(settings: Settings) -> Resources:
    """The clients and shared services of one process (an API worker or an ingestion worker);
    call close_resources when done."""
    mongo = create_mongo_client(settings)
    redis = create_redis_client(settings)
    circuit = RedisCircuit(settings.redis_retry_after_failure_seconds)
    db = mongo[settings.db_name]
    return Resources(
        settings=settings,
        mongo=mongo,
        db=db,
        redis=redis,
        cache=Cache(redis, circuit, enabled=settings.cache_enabled, ttl=settings.cache_ttl),
        rate_limiter=RateLimiter(redis, circuit),
        reads=ReadRouter(db, settings.read_policy_file),
        events=EventBus(redis),
    )


async def close_resources(resources: Resources) -> None:
    await resources.events.stop()
    if resources.redis is not None:
        await resources.redis.aclose()
    await resources.mongo.close()


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
