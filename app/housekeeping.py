"""The housekeeping rounds: what runs on a schedule rather than on a request or a job.

`botsmith worker` runs them next to its jobs; without Redis the API runs them (it is then the
only process). Across replicas each round runs in one process at a time (`app.core.periodic`).
"""

from app.analytics.rollups import rollup_compaction
from app.audit.rounds import audit_retention_round
from app.core.periodic import Periodic
from app.core.resources import Resources
from app.governance.erasure import erasure_round
from app.governance.retention import retention_round
from app.sources.refresh import source_refresh_round
from app.sources.stale import stale_source_sweep


def housekeeping_rounds(resources: Resources) -> list[Periodic]:
    return [
        stale_source_sweep(resources),
        audit_retention_round(resources),
        retention_round(resources),
        erasure_round(resources),
        source_refresh_round(resources),
        rollup_compaction(resources),
    ]
