"""`botsmith worker`: processes ingestion jobs from the Redis Stream through a consumer group.

At least once: a job is acknowledged only after its source is stored; a job whose worker died
is claimed by another worker after INGEST_RECLAIM_SECONDS. Processing is idempotent (a source's
chunks are replaced, and unchanged content is skipped), so a job done twice is done once.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket

from prometheus_client import start_http_server
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError, ResponseError

from app.core.config import Settings
from app.core.indexes import ensure_indexes
from app.core.metrics import record_memory
from app.core.redis import RedisClient
from app.core.resources import close_resources, open_resources
from app.sources.metrics import INGEST_BACKLOG, INGEST_JOBS
from app.sources.pipeline import IngestionPipeline
from app.sources.queue import GROUP, worker_heartbeats

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    resources = open_resources(settings)
    redis, db = resources.redis, resources.db
    if redis is None:
        raise SystemExit("botsmith worker needs REDIS_URL (without it the API ingests in-process)")
    pipeline = IngestionPipeline.over(resources)
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
    await _create_group(redis, stream)
    logger.info("worker %s reading %s (group %s)", consumer, stream, GROUP)
    beat_seconds = min(5.0, settings.ingest_worker_stale_seconds / 3)
    try:
        async with worker_heartbeats(redis, stream).beating(consumer, beat_seconds):
            await _consume(redis, stream, consumer, reclaim_ms, pipeline, stopping)
    finally:
        await close_resources(resources)
        logger.info("worker %s stopped", consumer)


async def _consume(
    redis: RedisClient,
    stream: str,
    consumer: str,
    reclaim_ms: int,
    pipeline: IngestionPipeline,
    stopping: asyncio.Event,
) -> None:
    """Reads, processes and acknowledges jobs until `stopping` is set."""
    while not stopping.is_set():
        try:
            # Jobs a dead worker left unacknowledged come first.
            _, claimed, _ = await redis.xautoclaim(
                stream, GROUP, consumer, min_idle_time=reclaim_ms, start_id="0-0", count=10
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
        for message_id, fields in messages:
            source_id = fields[b"source_id"].decode()
            logger.info("processing source %s (message %s)", source_id, message_id.decode())
            try:
                await pipeline.process(source_id)
            except PyMongoError as error:
                # Transient: left unacknowledged, so it is claimed again later.
                logger.warning("source %s not processed, will retry: %s", source_id, error)
                INGEST_JOBS.labels("retry").inc()
                continue
            except Exception:
                logger.exception("source %s failed unexpectedly", source_id)
                await pipeline.fail(source_id, "internal error while processing this source")
                INGEST_JOBS.labels("failed").inc()
            else:
                INGEST_JOBS.labels("done").inc()
            await redis.xack(stream, GROUP, message_id)
            if stopping.is_set():
                break


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
