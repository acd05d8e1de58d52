"""The housekeeping rounds: what runs on a schedule rather than on a request or a job.

`botsmith worker` runs them next to its jobs; without Redis the API runs them (it is then the
only process). Across replicas each round runs in one process at a time (`app.core.periodic`).
"""

from app.core.periodic import Periodic
from app.core.resources import Resources
from app.sources.stale import stale_source_sweep


def housekeeping_rounds(resources: Resources) -> list[Periodic]:
    return [stale_source_sweep(resources)]
