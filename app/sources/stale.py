"""Redis is the queue, MongoDB the record: sources whose job was lost are queued again.

A job can vanish without its source settling: Redis restarted without persistence, a failover to
a replica that lagged, an API process that ingested in-process and died. Every
INGEST_REQUEUE_CHECK_SECONDS one process (a housekeeping round) looks for sources still `pending`
or `processing` whose last change is older than INGEST_REQUEUE_AFTER_SECONDS and queues each
again. The bound is longer than INGEST_JOB_TIMEOUT_SECONDS, after which a running source fails, so
a source still being processed is not taken for a lost one; a pending source can be queued twice
when the stream's backlog is older than the bound, which costs a second pass over unchanged content
(the pipeline is idempotent) and nothing else.
"""

import logging
from datetime import timedelta

from app.core.periodic import Periodic
from app.core.resources import Resources
from app.core.security import utcnow
from app.sources.pipeline import IngestionPipeline
from app.sources.queue import SOURCE_FIELD
from app.sources.repository import SourceRepository
from app.sources.schemas import SourceStatus

logger = logging.getLogger(__name__)
BATCH = 100  # sources queued again per round, at most


class StaleSources:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._sources = SourceRepository(resources.db)
        self._settings = resources.settings
        # Without Redis the API ingests in-process, and this round runs in its only process.
        self._local = IngestionPipeline.over(resources) if resources.redis is None else None

    async def queue_again(self) -> int:
        """Queues the stale sources again; returns how many."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self._settings.ingest_requeue_after_seconds)
        stale = await self._sources.stale(cutoff, BATCH)
        for source in stale:
            # Marked first: should queueing fail, the source is found again one bound later.
            await self._sources.set_status(source["id"], SourceStatus.PENDING, now)
            logger.warning(
                "source %s was %s since %s without a job; queued again",
                source["id"],
                source["status"],
                source["updated_at"].isoformat(),
            )
            await self._queue(source["id"])
        return len(stale)

    async def _queue(self, source_id: str) -> None:
        if self._local is not None:
            await self._local.process_in_process(source_id)
        elif self._resources.redis is not None:
            await self._resources.redis.xadd(
                self._settings.ingest_stream, {SOURCE_FIELD: source_id}
            )


def stale_source_sweep(resources: Resources) -> Periodic:
    return Periodic(
        name="stale-sources",
        interval=resources.settings.ingest_requeue_check_seconds,
        job=StaleSources(resources).queue_again,
    )
