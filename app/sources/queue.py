"""The ingestion queue: a Redis Stream read by `botsmith worker` processes through a consumer
group; without Redis, jobs run in the API process."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from app.core.redis import RedisClient

logger = logging.getLogger(__name__)
GROUP = "ingest"


class IngestQueue:
    def __init__(
        self,
        redis: RedisClient | None,
        stream: str,
        run_locally: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._run_locally = run_locally
        self._local: set[asyncio.Task[None]] = set()

    @property
    def distributed(self) -> bool:
        return self._redis is not None

    async def submit(self, source_id: str) -> None:
        if self._redis is not None:
            await self._redis.xadd(self._stream, {"source_id": source_id})
            return
        task = asyncio.create_task(self._run_locally(source_id))
        self._local.add(task)
        task.add_done_callback(self._local.discard)
