"""The audit log's housekeeping round: entries past AUDIT_RETENTION_DAYS are deleted."""

from app.audit.repository import AuditRepository
from app.audit.service import purge_expired
from app.core.periodic import Periodic
from app.core.resources import Resources

PURGE_BATCH = 500  # entries deleted per query
PURGE_BATCHES = 20  # queries per round, at most


def audit_retention_round(resources: Resources) -> Periodic:
    settings = resources.settings

    async def purge() -> int:
        return await purge_expired(
            AuditRepository(resources.db), settings.audit_retention_days, PURGE_BATCH, PURGE_BATCHES
        )

    # Deleting what is already expired is safe to do twice.
    return Periodic("audit-retention", settings.audit_purge_seconds, purge, redis_optional=True)
