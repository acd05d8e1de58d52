"""The ingestion queue: a Redis Stream read by `botsmith worker` processes through a consumer
group; without Redis, jobs run in the API process."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from app.core.heartbeats import Heartbeats
from app.core.redis import RedisClient

logger = logging.getLogger(__name__)
GROUP = "ingest"


def worker_heartbeats(redis: RedisClient, stream: str) -> Heartbeats:
    """The workers reading `stream`: each beats while it runs (`botsmith worker`)."""
    return Heartbeats(redis, f"{stream}:workers")


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
        self._workers = worker_heartbeats(redis, stream) if redis is not None else None

    @property
    def distributed(self) -> bool:
        return self._redis is not None

    async def live_workers(self, stale_after: float) -> int | None:
        """Workers seen within `stale_after` seconds; None when jobs run in this process.
        Raises RedisError when Redis does not answer."""
        if self._workers is None:
            return None
        return await self._workers.live(stale_after)

    async def submit(self, source_id: str) -> None:
        if self._redis is not None:
            await self._redis.xadd(self._stream, {"source_id": source_id})
            return
        task = asyncio.create_task(self._run_locally(source_id))
        self._local.add(task)
        task.add_done_callback(self._local.discard)
