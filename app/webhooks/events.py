"""The event types an endpoint can subscribe to."""

from enum import StrEnum


class WebhookEvent(StrEnum):
    CONVERSATION_CREATED = "conversation.created"
    MESSAGE_CREATED = "message.created"
    FEEDBACK_CREATED = "feedback.created"
    LEAD_CREATED = "lead.created"
    HANDOFF_REQUESTED = "handoff.requested"
    HANDOFF_CLOSED = "handoff.closed"
    SOURCE_READY = "source.ready"
    SOURCE_FAILED = "source.failed"


# Sent only by "send test event", whatever the endpoint subscribes to.
TEST_EVENT = "webhook.test"
