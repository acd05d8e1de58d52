"""`botsmith worker`: processes the jobs of the Redis Stream through a consumer group: sources
to ingest (`source_id`) and evaluation runs to execute (`eval_run_id`). Next to them it sends
the webhook deliveries (`app.webhooks.delivery`).

At least once: a job is acknowledged only after its source or run is stored; a job whose worker
died is claimed by another worker after INGEST_RECLAIM_SECONDS (a worker executing a run keeps
claiming it, however long it takes). Both are idempotent (a source's chunks are replaced, and
unchanged content is skipped; a finished run is skipped, a run started again replaces its
results), so a job done twice is done once.

Files are extracted in a child process with memory and CPU limits (`app.sources.sandbox`), so a
file fails its source rather than stopping the worker. Should a source job stop its workers all
the same, it is taken at most MAX_SOURCE_DELIVERIES times; then its source fails.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Sequence

from prometheus_client import start_http_server
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError, ResponseError

from app.core.config import Settings
from app.core.indexes import ensure_indexes
from app.core.metrics import record_memory
from app.core.periodic import Periodic, run_periodically
from app.core.redis import RedisClient
from app.core.resources import Resources, close_resources, open_resources
from app.evaluation.runner import EvaluationRunner
from app.retrieval.repository import ChunkRepository
from app.retrieval.segments import SegmentRepository, backfill_segments
from app.retrieval.service import RetrievalIndexes
from app.sources.egress import PinnedEgress
from app.sources.metrics import INGEST_BACKLOG, INGEST_JOBS
from app.sources.pipeline import IngestionPipeline
from app.sources.queue import EVAL_RUN_FIELD, GROUP, SOURCE_FIELD, worker_heartbeats
from app.webhooks.delivery import DeliveryLoop

logger = logging.getLogger(__name__)
MAX_SOURCE_DELIVERIES = 3


async def run_worker(
    settings: Settings, rounds: Callable[[Resources], Sequence[Periodic]] = lambda _: ()
) -> None:
    """Consumes jobs until SIGTERM or SIGINT, running the housekeeping `rounds` beside them."""
    resources = open_resources(settings)
    redis, db = resources.redis, resources.db
    if redis is None:
        raise SystemExit("botsmith worker needs REDIS_URL (without it the API ingests in-process)")
    pipeline = IngestionPipeline.over(resources)
    evaluations = EvaluationRunner.over(resources, RetrievalIndexes())
    stream, consumer = settings.ingest_stream, f"{socket.gethostname()}-{os.getpid()}"
    reclaim_ms = int(settings.ingest_reclaim_seconds * 1000)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
        logger.info("worker metrics on %s:%d/metrics", settings.host, settings.worker_metrics_port)
    if settings.mongo_ensure_indexes:  # off where the operator owns the indexes
        await ensure_indexes(db)
    try:
        indexed = await backfill_segments(SegmentRepository(resources), ChunkRepository(db))
    except PyMongoError as error:  # the processes index those sources themselves meanwhile
        logger.warning("index segments not backfilled: %s", error)
    else:
        if indexed:
            logger.info("built the index segments of %d sources stored without them", indexed)
    await _create_group(redis, stream)
    logger.info("worker %s reading %s (group %s)", consumer, stream, GROUP)
    beat_seconds = min(5.0, settings.ingest_worker_stale_seconds / 3)
    # Webhook deliveries go out next to the jobs, until the same stop.
    webhooks = DeliveryLoop(resources, PinnedEgress.configured(settings))
    background = [asyncio.create_task(webhooks.run(stopping))]
    background += [
        asyncio.create_task(run_periodically(redis, periodic, settings.db_name, stopping))
        for periodic in rounds(resources)
    ]
    try:
        async with worker_heartbeats(redis, stream).beating(consumer, beat_seconds):
            jobs = _Jobs(redis, stream, consumer, reclaim_ms, pipeline, evaluations, stopping)
            await jobs.consume()
    finally:
        stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*background)
        await close_resources(resources)
        logger.info("worker %s stopped", consumer)


class _Jobs:
    """Reads, dispatches and acknowledges the stream's jobs."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        consumer: str,
        reclaim_ms: int,
        pipeline: IngestionPipeline,
        evaluations: EvaluationRunner,
        stopping: asyncio.Event,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._consumer = consumer
        self._reclaim_ms = reclaim_ms
        self._pipeline = pipeline
        self._evaluations = evaluations
        self._stopping = stopping

    async def consume(self) -> None:
        """Processes jobs until `stopping` is set."""
        redis, stream, consumer = self._redis, self._stream, self._consumer
        while not self._stopping.is_set():
            try:
                # Jobs a dead worker left unacknowledged come first.
                _, claimed, _ = await redis.xautoclaim(
                    stream,
                    GROUP,
                    consumer,
                    min_idle_time=self._reclaim_ms,
                    start_id="0-0",
                    count=10,
                )
                fresh = await redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=10, block=1000)
            except RedisError as error:
                if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                    # Redis lost the stream or the group (a restart without persistence).
                    logger.warning("consumer group %s is gone; creating it again", GROUP)
                    with contextlib.suppress(RedisError):
                        await _create_group(redis, stream)
                    continue
                logger.warning("redis unavailable, retrying: %s", error)
                await asyncio.sleep(1)
                continue
            await _record_backlog(redis, stream)
            record_memory()
            messages = list(claimed) + [m for _, batch in fresh or [] for m in batch]
            reclaimed = {message_id for message_id, _ in claimed}
            for message_id, fields in messages:
                if run_id := fields.get(EVAL_RUN_FIELD.encode()):
                    done = await self._evaluate(message_id, run_id.decode())
                elif source_id := fields.get(SOURCE_FIELD.encode()):
                    if message_id in reclaimed and await self._given_up(message_id, source_id):
                        done = True
                    else:
                        done = await self._ingest(message_id, source_id.decode())
                else:
                    logger.warning("job %s is of no known kind: dropped", message_id.decode())
                    done = True
                if done:
                    await redis.xack(stream, GROUP, message_id)
                if self._stopping.is_set():
                    break

    async def _ingest(self, message_id: bytes, source_id: str) -> bool:
        """Processes a source; False leaves the job to be claimed again."""
        logger.info("processing source %s (message %s)", source_id, message_id.decode())
        try:
            await self._pipeline.process(source_id)
        except PyMongoError as error:
            # Transient: left unacknowledged, so it is claimed again later.
            logger.warning("source %s not processed, will retry: %s", source_id, error)
            INGEST_JOBS.labels("retry").inc()
            return False
        except Exception:
            logger.exception("source %s failed unexpectedly", source_id)
            await self._pipeline.fail(source_id, "internal error while processing this source")
            INGEST_JOBS.labels("failed").inc()
        else:
            INGEST_JOBS.labels("done").inc()
        return True

    async def _given_up(self, message_id: bytes, source_id: bytes) -> bool:
        """Fails the source of a job delivered more than MAX_SOURCE_DELIVERIES times: the workers
        that took it before died on it."""
        try:
            pending = await self._redis.xpending_range(
                self._stream, GROUP, min=message_id, max=message_id, count=1
            )
        except RedisError:
            return False
        deliveries = int(pending[0]["times_delivered"]) if pending else 0
        if deliveries <= MAX_SOURCE_DELIVERIES:
            return False
        reason = f"processing this source stopped its worker {deliveries - 1} times"
        logger.error("source %s: %s; not tried again", source_id.decode(), reason)
        try:
            await self._pipeline.fail(source_id.decode(), reason)
        except PyMongoError:
            return False  # processed as usual: it leaves the job for later if this goes on
        INGEST_JOBS.labels("failed").inc()
        return True

    async def _evaluate(self, message_id: bytes, run_id: str) -> bool:
        """Executes a run; False leaves the job to be claimed again (a database error, or this
        worker stopping in the middle of the run)."""
        logger.info("executing evaluation run %s (message %s)", run_id, message_id.decode())
        try:
            async with self._claimed(message_id):
                return await self._evaluations.run(run_id, self._stopping)
        except PyMongoError as error:
            logger.warning("evaluation run %s not executed, will retry: %s", run_id, error)
            return False
        except Exception:
            logger.exception("evaluation run %s failed unexpectedly", run_id)
            await self._evaluations.fail(run_id, "internal error while executing this run")
            return True

    @contextlib.asynccontextmanager
    async def _claimed(self, message_id: bytes) -> AsyncIterator[None]:
        """Claims the job again every third of the reclaim time while it runs: a long job stays
        this worker's, and is claimed by another only once this one is gone."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(self._reclaim_ms / 3000)
                with contextlib.suppress(RedisError):
                    await self._redis.xclaim(
                        self._stream,
                        GROUP,
                        self._consumer,
                        min_idle_time=0,
                        message_ids=[message_id],
                        justid=True,
                    )

        keeper = asyncio.create_task(keep())
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


async def _create_group(redis: RedisClient, stream: str) -> None:
    try:
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def _record_backlog(redis: RedisClient, stream: str) -> None:
    """Jobs the group has not read yet (lag) plus those read and not acknowledged (pending)."""
    try:
        groups = await redis.xinfo_groups(stream)
    except RedisError:
        return
    for group in groups:
        if group["name"] in (GROUP, GROUP.encode()):
            INGEST_BACKLOG.set((group.get("lag") or 0) + group["pending"])
