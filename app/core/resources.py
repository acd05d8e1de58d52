"""What the lifespan opens for one worker process, reachable from requests through app.state."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import MongoClient, MongoDatabase
from app.core.ratelimit import RateLimiter
from app.core.read_policy import ReadRouter
from app.core.redis import RedisClient


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    mongo: MongoClient
    db: MongoDatabase
    redis: RedisClient | None
    cache: Cache
    rate_limiter: RateLimiter
    reads: ReadRouter


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a thread pool, which
# costs more than everything else a simple request does.
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
