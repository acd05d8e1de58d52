"""What the handoff domain stores: the handoff record inside a conversation, the messages agents
write (and the fallback), and the agents an owner invited to a bot."""

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from app.handoff.schemas import HandoffState, Requester


class HandoffDocument(TypedDict):
    """The `handoff` field of a conversation: its current (or last) handoff."""

    id: str
    state: HandoffState
    requested_at: datetime
    requested_by: Requester
    requested_by_user: str | None  # the owner, when an owner asked
    deadline: datetime  # the fallback is sent when nobody claimed it by then
    fallback_sent_at: datetime | None
    claimed_at: datetime | None
    claimed_by: str | None
    agent_name: str | None
    closed_at: datetime | None
    closed_by: str | None


class HandedOffConversation(TypedDict):
    """The fields of a conversation the handoff rules read."""

    id: str
    chatbot_id: str
    user_id: str
    session_id: str | None
    handoff: NotRequired[HandoffDocument]


class HandoffMessageDocument(TypedDict):
    """An agent's message, or the fallback sent in the bot's name, in the messages collection."""

    id: str
    conversation_id: str
    chatbot_id: str
    role: Literal["agent", "assistant"]
    content: str
    timestamp: datetime
    agent_id: NotRequired[str]
    agent_name: NotRequired[str]
    handoff_fallback: NotRequired[bool]


class HandoffMarkDocument(TypedDict):
    """One step of a handoff that must happen once (claim, close, fallback): its unique index
    on (handoff_id, step) lets exactly one of concurrent callers record it."""

    handoff_id: str
    step: Literal["claim", "close", "fallback"]
    chatbot_id: str
    conversation_id: str
    user_id: str | None
    at: datetime


class AgentDocument(TypedDict):
    id: str
    chatbot_id: str
    owner_id: str
    user_id: str  # the agent's own account
    email: str
    display_name: str
    created_at: datetime
