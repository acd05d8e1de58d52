"""Prometheus metrics of quotas."""

from prometheus_client import Counter

QUOTA_REJECTIONS = Counter(
    "botsmith_quota_rejections",
    "Requests refused because a quota was used up, by quota.",
    ["quota"],
)
