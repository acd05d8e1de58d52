"""The ingestion queue: a Redis Stream read by `botsmith worker` processes through a consumer
group; without Redis, jobs run in the API process. A job is a source to process (field
`source_id`) or an evaluation run to execute (field `eval_run_id`)."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from app.core.heartbeats import Heartbeats
from app.core.redis import RedisClient

logger = logging.getLogger(__name__)
GROUP = "ingest"
SOURCE_FIELD = "source_id"
EVAL_RUN_FIELD = "eval_run_id"
LocalJob = Callable[[str], Coroutine[Any, Any, object]]


def worker_heartbeats(redis: RedisClient, stream: str) -> Heartbeats:
    """The workers reading `stream`: each beats while it runs (`botsmith worker`)."""
    return Heartbeats(redis, f"{stream}:workers")


class IngestQueue:
    def __init__(
        self,
        redis: RedisClient | None,
        stream: str,
        run_locally: LocalJob,
        evaluate_locally: LocalJob,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._run_locally = run_locally
        self._evaluate_locally = evaluate_locally
        self._local: set[asyncio.Task[object]] = set()
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
        await self._submit(SOURCE_FIELD, source_id, self._run_locally)

    async def submit_evaluation(self, run_id: str) -> None:
        await self._submit(EVAL_RUN_FIELD, run_id, self._evaluate_locally)

    async def _submit(self, field: str, value: str, run_locally: LocalJob) -> None:
        if self._redis is not None:
            await self._redis.xadd(self._stream, {field: value})
            return
        task = asyncio.create_task(run_locally(value))
        self._local.add(task)
        task.add_done_callback(self._local.discard)
