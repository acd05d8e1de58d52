"""Prometheus metrics of the ingestion worker and of scheduled refreshes."""

from prometheus_client import Counter, Gauge

INGEST_JOBS = Counter(
    "botsmith_ingest_jobs",
    "Ingestion jobs handled by `botsmith worker`, by outcome (done, retry, failed).",
    ["outcome"],
)
INGEST_BACKLOG = Gauge(
    "botsmith_ingest_backlog",
    "Ingestion jobs not yet acknowledged: waiting in the stream plus being processed.",
    multiprocess_mode="livemax",
)
SOURCE_REFRESHES = Counter(
    "botsmith_source_refreshes",
    "Scheduled refreshes of URL sources, by outcome (unchanged, updated, failed).",
    ["outcome"],
)
