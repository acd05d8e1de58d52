"""The stored shape of an audit entry (the `audit_log` collection)."""

from datetime import datetime
from enum import StrEnum
from typing import TypedDict


class AuditAction(StrEnum):
    """The actions this code base records by name; an administrator's route is recorded as
    `admin.<route name>`."""

    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    PASSWORD_CHANGE = "user.password_change"
    EMAIL_CHANGE = "user.email_change"
    ROLE_CHANGE = "user.role_change"
    STATUS_CHANGE = "user.status_change"
    API_KEY_CREATE = "api_key.create"
    API_KEY_REVOKE = "api_key.revoke"
    VISIBILITY_CHANGE = "chatbot.visibility_change"
    CONVERSATIONS_EXPORT = "conversations.export"
    LEADS_EXPORT = "leads.export"
    ERASURE_REQUESTED = "erasure.requested"


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    # Refused before it ran: a signed-in caller without the right to use the route.
    DENIED = "denied"


class AuditDocument(TypedDict):
    id: str
    action: str
    actor_id: str | None
    # What was acted on, as "kind:id" (user:…, chatbot:…, api_key:…, or email:<digest>).
    target: str | None
    # The account the target belongs to, so its owner sees the entry (GET /api/audit); the
    # owner sees `client` and `request_id` only of the entries they are the actor of.
    owner_id: str | None
    client: str | None
    request_id: str | None
    outcome: str
    details: dict[str, str | int | bool]
    created_at: datetime
