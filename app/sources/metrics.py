"""Prometheus metrics of the ingestion worker."""

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
