"""Reading the audit log: every entry for administrators, their own for owners; and deleting
entries past AUDIT_RETENTION_DAYS."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.audit.documents import AuditDocument
from app.audit.metrics import AUDIT_PURGED
from app.audit.repository import AuditRepository
from app.audit.schemas import AuditEntryOut
from app.core.schemas import Page, page_of
from app.core.security import utcnow


def _entry_out(entry: AuditDocument) -> AuditEntryOut:
    return AuditEntryOut.model_validate(entry)


def _owner_entry_out(user_id: str) -> Callable[[AuditDocument], AuditEntryOut]:
    """An entry as its owner sees it: another actor's client address and request id (an
    administrator's, say) are theirs, not the owner's, and show as null."""

    def entry_out(entry: AuditDocument) -> AuditEntryOut:
        shown = _entry_out(entry)
        if entry["actor_id"] == user_id:
            return shown
        return shown.model_copy(update={"client": None, "request_id": None})

    return entry_out


def _time_range(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    bounds = {"$gte": since, "$lt": until}
    present = {op: value for op, value in bounds.items() if value is not None}
    return {"created_at": present} if present else {}


class AuditService:
    def __init__(self, entries: AuditRepository) -> None:
        self._entries = entries

    async def list_all(
        self,
        *,
        action: str | None,
        actor_id: str | None,
        target: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[AuditEntryOut]:
        criteria: dict[str, Any] = _time_range(since, until)
        for field, value in (("action", action), ("actor_id", actor_id), ("target", target)):
            if value is not None:
                criteria[field] = value
        found = await self._entries.find(criteria, cursor, limit + 1)
        return page_of(found, limit, _entry_out, "created_at")

    async def list_own(
        self,
        user_id: str,
        *,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[AuditEntryOut]:
        """What the user did, and what was done to them or to what they own."""
        criteria: dict[str, Any] = {
            "$or": [{"actor_id": user_id}, {"owner_id": user_id}],
            **_time_range(since, until),
        }
        if action is not None:
            criteria["action"] = action
        found = await self._entries.find(criteria, cursor, limit + 1)
        return page_of(found, limit, _owner_entry_out(user_id), "created_at")


async def purge_expired(
    entries: AuditRepository, retention_days: int, batch: int, max_batches: int
) -> int:
    """Deletes entries older than the retention, `batch` at a time and at most `max_batches`
    times (the next round goes on); returns how many."""
    cutoff = utcnow() - timedelta(days=retention_days)
    purged = 0
    for _ in range(max_batches):
        deleted = await entries.delete_older_than(cutoff, batch)
        purged += deleted
        AUDIT_PURGED.inc(deleted)
        if deleted < batch:
            break
    return purged
