"""Kubernetes-style status conditions."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message}


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[dict[str, str]]
) -> list[dict[str, str]]:
    """The new conditions, keeping lastTransitionTime where a condition's status is unchanged."""
    before = {c.get("type"): c for c in previous or []}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = []
    for item in current:
        old = before.get(item["type"])
        same = old is not None and old.get("status") == item["status"]
        stamp = str(old.get("lastTransitionTime", now)) if same and old is not None else now
        merged.append({**item, "lastTransitionTime": stamp})
    return merged
