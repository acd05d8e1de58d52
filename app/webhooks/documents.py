"""What the webhook collections store: endpoints (with their signing secret) and deliveries."""

from datetime import datetime
from enum import StrEnum
from typing import NotRequired, TypedDict


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class EndpointDocument(TypedDict):
    id: str
    chatbot_id: str
    user_id: str
    url: str
    events: list[str]
    enabled: bool
    secret: str
    created_at: datetime
    updated_at: datetime
    # Why the delivery loop turned the endpoint off (null while it is on or was turned off by hand).
    disabled_reason: str | None
    # The first failed attempt since the last success; null while deliveries succeed.
    failing_since: datetime | None


class AttemptDocument(TypedDict):
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    # When the next attempt was scheduled for (absent after the last one).
    retry_at: NotRequired[datetime]


class DeliveryDocument(TypedDict):
    id: str
    endpoint_id: str
    chatbot_id: str
    event_id: str
    event_type: str
    # The exact bytes sent (and signed) on every attempt: a retry repeats the same body.
    body: str
    status: DeliveryStatus
    attempts: int
    attempt_log: list[AttemptDocument]
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    # A worker's claim on the current attempt: nobody else sends it before this time.
    lease_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    latency_ms: int | None
    delivered_at: datetime | None
    # Failures in a row since the delivery was (re)scheduled: the backoff's exponent.
    failures: int
    # When retries stop: the first attempt plus WEBHOOK_RETRY_HOURS; null before it (a
    # redelivery makes it null again).
    give_up_at: datetime | None
    lease_token: NotRequired[str | None]
    # Asked for by the owner (test event, redelivery): sent even to a disabled endpoint.
    manual: NotRequired[bool]
