"""Scheduled refreshes of URL sources: every SOURCE_REFRESH_CHECK_SECONDS one process (a
housekeeping round, under its lease) takes the sources whose `next_refresh_at` has come and
fetches them again, one after the other, at most SOURCE_REFRESH_BATCH per round.

Each source is claimed first (`processing`, and its next refresh scheduled), so a resync queued
meanwhile waits its turn (409) and a source is not taken twice; a process that dies holding one
leaves it to the stale-source sweep (`app.sources.stale`), which queues it again. Pages are asked
for conditionally and only those that changed are chunked again (`app.sources.pipeline`); a
refresh that fails keeps the chunks in place and records why.
"""

import contextlib
import logging

from pymongo.errors import PyMongoError

from app.core.periodic import Periodic
from app.core.resources import Resources
from app.core.security import utcnow
from app.sources.documents import SourceDocument
from app.sources.metrics import SOURCE_REFRESHES
from app.sources.pipeline import IngestionPipeline
from app.sources.repository import SourceRepository
from app.sources.schedule import next_refresh_at
from app.sources.schemas import RefreshOutcome, RefreshSchedule, SourceStatus

logger = logging.getLogger(__name__)


class SourceRefresher:
    def __init__(
        self, sources: SourceRepository, pipeline: IngestionPipeline, scale: float, batch: int
    ) -> None:
        self._sources = sources
        self._pipeline = pipeline
        self._scale = scale
        self._batch = batch

    @classmethod
    def over(cls, resources: Resources) -> "SourceRefresher":
        settings = resources.settings
        return cls(
            SourceRepository(resources.db),
            IngestionPipeline.over(resources),
            settings.source_refresh_period_scale,
            settings.source_refresh_batch,
        )

    async def refresh_due(self) -> int:
        """Refreshes the sources that are due; returns how many were refreshed."""
        now = utcnow()
        defaults: dict[str, RefreshSchedule] = {}
        refreshed = 0
        for source in await self._sources.due_for_refresh(now, self._batch):
            schedule = source.get("refresh_schedule") or await self._default(
                source["chatbot_id"], defaults
            )
            next_at = next_refresh_at(utcnow(), RefreshSchedule(schedule), self._scale)
            if next_at is None:  # the chatbot's default went off after it was scheduled
                await self._sources.reschedule(source["id"], None)
                continue
            if not await self._sources.claim_for_refresh(source["id"], now, next_at):
                continue
            outcome = await self._refresh(source)
            if outcome is not None:
                SOURCE_REFRESHES.labels(outcome.value).inc()
                logger.info("source %s refreshed: %s", source["id"], outcome.value)
                refreshed += 1
        return refreshed

    async def _refresh(self, source: SourceDocument) -> RefreshOutcome | None:
        settled = SourceStatus(source["status"])
        try:
            return await self._pipeline.refresh(source["id"], settled)
        except Exception:
            logger.exception("source %s: refresh failed unexpectedly", source["id"])
            with contextlib.suppress(PyMongoError):  # else the stale-source sweep takes it
                reason = "internal error while refreshing this source"
                await self._pipeline.refresh_failed(source, settled, reason)
            return RefreshOutcome.FAILED

    async def _default(self, chatbot_id: str, known: dict[str, RefreshSchedule]) -> RefreshSchedule:
        if chatbot_id not in known:
            known[chatbot_id] = await self._sources.default_schedule(chatbot_id)
        return known[chatbot_id]


def source_refresh_round(resources: Resources) -> Periodic:
    return Periodic(
        name="source-refresh",
        interval=resources.settings.source_refresh_check_seconds,
        job=SourceRefresher.over(resources).refresh_due,
    )
