"""Records events for delivery: the request path writes the outbox, the delivery loop sends it.

Other domains call `emit` after their own write succeeded. It stores one delivery per enabled
endpoint of the bot subscribed to the event (one indexed read when there is none) and never raises:
a webhook problem must not fail the request that caused it.
"""

import json
import logging
from collections.abc import Mapping
from datetime import datetime

from pymongo.errors import PyMongoError

from app.chatbots.documents import ChatbotDocument
from app.core.resources import Resources
from app.core.security import new_id, utcnow
from app.webhooks.documents import DeliveryDocument, DeliveryStatus
from app.webhooks.events import TEST_EVENT, WebhookEvent
from app.webhooks.repository import WebhookRepository

logger = logging.getLogger(__name__)

CONVERSATION_CREATED = WebhookEvent.CONVERSATION_CREATED
MESSAGE_CREATED = WebhookEvent.MESSAGE_CREATED
FEEDBACK_CREATED = WebhookEvent.FEEDBACK_CREATED
LEAD_CREATED = WebhookEvent.LEAD_CREATED
HANDOFF_REQUESTED = WebhookEvent.HANDOFF_REQUESTED
HANDOFF_CLOSED = WebhookEvent.HANDOFF_CLOSED
SOURCE_READY = WebhookEvent.SOURCE_READY
SOURCE_FAILED = WebhookEvent.SOURCE_FAILED

__all__ = [
    "CONVERSATION_CREATED",
    "FEEDBACK_CREATED",
    "HANDOFF_CLOSED",
    "HANDOFF_REQUESTED",
    "LEAD_CREATED",
    "MESSAGE_CREATED",
    "SOURCE_FAILED",
    "SOURCE_READY",
    "WebhookEvent",
    "emit",
]


def event_body(
    event_id: str,
    event_type: str,
    chatbot_id: str,
    created_at: datetime,
    data: Mapping[str, object],
) -> str:
    """The JSON body every endpoint receives: {"id", "type", "created_at", "chatbot_id", "data"}."""
    event = {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "chatbot_id": chatbot_id,
        "data": dict(data),
    }
    return json.dumps(event, default=_json_value, separators=(",", ":"), ensure_ascii=False)


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def new_delivery(
    endpoint_id: str,
    chatbot_id: str,
    event_id: str,
    event_type: str,
    body: str,
    now: datetime,
    *,
    manual: bool = False,
) -> DeliveryDocument:
    return DeliveryDocument(
        id=new_id(),
        endpoint_id=endpoint_id,
        chatbot_id=chatbot_id,
        event_id=event_id,
        event_type=event_type,
        body=body,
        status=DeliveryStatus.PENDING,
        attempts=0,
        attempt_log=[],
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        lease_until=None,
        last_status_code=None,
        last_error=None,
        latency_ms=None,
        delivered_at=None,
        failures=0,
        give_up_at=None,
        manual=manual,
    )


def new_event_id() -> str:
    return f"evt_{new_id()}"


async def emit(
    resources: Resources,
    chatbot: ChatbotDocument,
    event_type: str,
    data: Mapping[str, object],
) -> None:
    """Records the event for every endpoint of the bot subscribed to it (durably, in MongoDB);
    the worker delivers it. Never raises for delivery problems; cheap when the bot has no
    endpoints."""
    if event_type == TEST_EVENT or event_type not in WebhookEvent:
        logger.error("not a webhook event type: %s", event_type)
        return
    repository = WebhookRepository(resources.db)
    try:
        endpoint_ids = await repository.subscribed_endpoint_ids(chatbot["id"], event_type)
        if not endpoint_ids:
            return
        now = utcnow()
        event_id = new_event_id()
        body = event_body(event_id, event_type, chatbot["id"], now, data)
        await repository.insert_deliveries(
            [
                new_delivery(endpoint_id, chatbot["id"], event_id, event_type, body, now)
                for endpoint_id in endpoint_ids
            ]
        )
    except (PyMongoError, TypeError, ValueError) as error:
        logger.warning("could not record a %s webhook event: %s", event_type, error)
