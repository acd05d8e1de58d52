"""Refusals by quota: 429 for a rate (messages per period, which resets), 409 for a stock
(bots, sources, characters, which the owner frees). Both name the quota and its limit; a rate
says when it resets (`resets_at`, and `Retry-After`). Each refusal is counted in the metric."""

from datetime import datetime
from http import HTTPStatus

from app.core.errors import DomainError, LimitReachedError
from app.core.periods import seconds_until, utc_iso
from app.quotas.metrics import QUOTA_REJECTIONS
from app.quotas.schemas import QuotaName


class QuotaExceededError(DomainError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    title = "Quota exceeded"

    def __init__(
        self, quota: QuotaName, limit: int, what: str, resets_at: datetime, now: datetime
    ) -> None:
        retry_after = seconds_until(resets_at, now)
        super().__init__(
            f"{what} ({limit}) is used up; it resets at {utc_iso(resets_at)} ({quota.value})",
            headers={"Retry-After": str(retry_after)},
            extensions={"quota": quota.value, "limit": limit, "resets_at": utc_iso(resets_at)},
        )
        self.quota = quota
        self.retry_after = retry_after
        self.resets_at = resets_at
        QUOTA_REJECTIONS.labels(quota.value).inc()


class QuotaStockError(LimitReachedError):
    """409: a stock quota is full (the detail says how to free it)."""

    def __init__(self, quota: QuotaName, limit: int, detail: str) -> None:
        super().__init__(detail, extensions={"quota": quota.value, "limit": limit})
        self.quota = quota
        QUOTA_REJECTIONS.labels(quota.value).inc()
