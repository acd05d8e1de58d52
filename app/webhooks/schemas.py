"""Webhook endpoints and their deliveries: request and response models."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, HttpUrl

from app.core.schemas import RequestModel
from app.webhooks.documents import DeliveryStatus
from app.webhooks.events import WebhookEvent


def _without_credentials(url: HttpUrl) -> HttpUrl:
    # Refused rather than stored: the URL is shown in the endpoint list and the logs.
    if url.username is not None or url.password is not None:
        raise ValueError("a URL with a user name or password is not accepted")
    return url


def _distinct(events: list[WebhookEvent]) -> list[WebhookEvent]:
    return list(dict.fromkeys(events))


EndpointUrl = Annotated[
    HttpUrl,
    Field(
        max_length=2000,
        description="https; http only for hosts on INGEST_URL_ALLOWLIST. Private, loopback and "
        "link-local addresses are refused unless allow-listed.",
    ),
    AfterValidator(_without_credentials),
]
Events = Annotated[
    list[WebhookEvent],
    Field(min_length=1, max_length=len(WebhookEvent), description="The events to receive"),
    AfterValidator(_distinct),
]


class WebhookCreate(RequestModel):
    url: EndpointUrl
    events: Events
    enabled: bool = True


class WebhookUpdate(RequestModel):
    """Only the fields sent are changed. Enabling an endpoint clears its `disabled_reason`."""

    url: EndpointUrl | None = None
    events: Events | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: str
    chatbot_id: str
    url: str
    events: list[WebhookEvent]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why deliveries turned the endpoint off (every attempt failed for "
        "WEBHOOK_RETRY_HOURS); null otherwise"
    )
    failing_since: datetime | None = Field(
        description="Since when every attempt has failed; null while deliveries succeed"
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64 key); shown only in this response"
    )


class AttemptOut(BaseModel):
    at: datetime = Field(description="When the attempt ended")
    status_code: int | None = Field(description="The endpoint's answer; null when none came")
    latency_ms: int
    error: str | None = Field(description="Why the attempt failed; null when it succeeded")
    retry_at: datetime | None = Field(default=None, description="When the next attempt is due")


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_id: str = Field(description="The `webhook-id` header: the same on every attempt")
    event_type: str
    status: DeliveryStatus
    status_code: int | None = Field(description="The last attempt's status code")
    latency_ms: int | None = Field(description="The last attempt's latency")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut] = Field(description="The latest attempts, oldest first")
