"""Prometheus metrics of retention and erasure."""

from prometheus_client import Counter

GOVERNANCE_DELETED = Counter(
    "botsmith_governance_deleted",
    "Documents (and Redis keys) deleted, by reason (retention, expiry, erasure) and collection.",
    ["reason", "collection"],
)
ERASURES_FINISHED = Counter(
    "botsmith_erasures_finished",
    "Erasures that reached the end, by kind (visitor, account) and status (done, failed).",
    ["kind", "status"],
)
