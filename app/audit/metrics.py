"""Prometheus metrics of the audit log."""

from prometheus_client import Counter

AUDIT_RECORDS = Counter(
    "botsmith_audit_records",
    "Audit entries by result: stored, or failed (the database refused; the request went on).",
    ["result"],
)
AUDIT_PURGED = Counter(
    "botsmith_audit_purged",
    "Audit entries deleted for being older than AUDIT_RETENTION_DAYS.",
)
