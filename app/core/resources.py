"""The clients of one process (MongoDB, Redis, the outgoing HTTP pool) and the shared services
built directly on them; the composition point (`app.container`) opens them once per process."""

from dataclasses import dataclass

import httpx

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import MongoClient, MongoDatabase, create_mongo_client
from app.core.events import EventBus
from app.core.http import http_client
from app.core.ratelimit import VerifiedKeys
from app.core.read_policy import ReadRouter
from app.core.redis import RedisCircuit, RedisClient, close_redis_client, create_redis_client


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    mongo: MongoClient
    db: MongoDatabase
    redis: RedisClient | None
    redis_circuit: RedisCircuit
    cache: Cache
    reads: ReadRouter
    events: EventBus
    http: httpx.AsyncClient
    verified_keys: VerifiedKeys


def open_resources(settings: Settings) -> Resources:
    """Creates the clients (they connect lazily); call close_resources when done."""
    mongo = create_mongo_client(settings)
    redis = create_redis_client(settings)
    circuit = RedisCircuit(settings.redis_retry_after_failure_seconds)
    db = mongo[settings.db_name]
    return Resources(
        settings=settings,
        mongo=mongo,
        db=db,
        redis=redis,
        redis_circuit=circuit,
        cache=Cache(redis, circuit, enabled=settings.cache_enabled, ttl=settings.cache_ttl),
        reads=ReadRouter(db, settings.read_policy_file),
        events=EventBus(redis),
        http=http_client(),
        verified_keys=VerifiedKeys(),
    )


async def close_resources(resources: Resources) -> None:
    await resources.events.stop()
    await resources.http.aclose()
    if resources.redis is not None:
        await close_redis_client(resources.redis)
    await resources.mongo.close()
