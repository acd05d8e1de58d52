"""UTC periods (clock hour, day, calendar month) that quotas and token budgets count in: their
names and ends, and how a refusal says when one resets."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Periods:
    hour: str
    hour_ends: datetime
    day: str
    day_ends: datetime
    month: str
    month_ends: datetime

    @classmethod
    def at(cls, moment: datetime) -> "Periods":
        moment = moment.astimezone(UTC)
        hour_start = moment.replace(minute=0, second=0, microsecond=0)
        day_start = hour_start.replace(hour=0)
        month_ends = (
            datetime(moment.year + 1, 1, 1, tzinfo=UTC)
            if moment.month == 12
            else datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)
        )
        return cls(
            hour=hour_start.strftime("%Y-%m-%dT%H"),
            hour_ends=hour_start + timedelta(hours=1),
            day=day_start.date().isoformat(),
            day_ends=day_start + timedelta(days=1),
            month=f"{moment.year:04d}-{moment.month:02d}",
            month_ends=month_ends,
        )


def utc_iso(moment: datetime) -> str:
    """`2026-12-02T00:00:00Z`: a UTC time as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds until `moment`, at least 1: a Retry-After."""
    return max(1, math.ceil((moment - now).total_seconds()))
