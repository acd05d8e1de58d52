"""When a URL source is refreshed next: its schedule's period from now, give or take a tenth,
so that sources created together do not all refresh together."""

import random
from datetime import datetime, timedelta

from app.sources.schemas import RefreshSchedule

PERIOD_SECONDS = {
    RefreshSchedule.HOURLY: 3600.0,
    RefreshSchedule.DAILY: 86_400.0,
    RefreshSchedule.WEEKLY: 7 * 86_400.0,
}
JITTER = 0.1  # a next time lands within ±10 % of the period


def next_refresh_at(
    now: datetime, schedule: RefreshSchedule, scale: float = 1.0
) -> datetime | None:
    """The next refresh time on this schedule (None: off). `scale` multiplies the periods
    (SOURCE_REFRESH_PERIOD_SCALE, for tests)."""
    if schedule is RefreshSchedule.OFF:
        return None
    period = PERIOD_SECONDS[schedule] * scale
    # Spreading refreshes over time is not a secret: the module's generator is enough.
    return now + timedelta(seconds=period * random.uniform(1 - JITTER, 1 + JITTER))
