"""Human handoff: request, response and live-event models (owners, agents and visitors)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel
from app.users.schemas import Email

SessionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DisplayName = Annotated[str, Field(min_length=1, max_length=60)]
ReplyText = Annotated[str, Field(min_length=1, max_length=4000)]


class HandoffState(StrEnum):
    WAITING = "waiting"  # asked for; nobody has claimed it yet (the bot is silent)
    ACTIVE = "active"  # an agent claimed it (the bot is silent)
    CLOSED = "closed"  # over; the bot answers again


OPEN_STATES = (HandoffState.WAITING, HandoffState.ACTIVE)


class Requester(StrEnum):
    VISITOR = "visitor"
    BOT = "bot"  # after the bot's configured number of "I don't know" answers
    OWNER = "owner"
    API_KEY = "api_key"


class VisitorHandoffRequest(RequestModel):
    """A widget visitor asks for a person in one of their own conversations."""

    session_id: SessionId


class HandoffOut(BaseModel):
    """A conversation handed to a person: who asked, who took it, who closed it, and when."""

    conversation_id: str
    chatbot_id: str
    session_id: str | None
    state: HandoffState
    requested_at: datetime
    requested_by: Requester
    claimed_at: datetime | None = None
    claimed_by: str | None = Field(default=None, description="The agent's (or owner's) user id")
    agent_name: str | None = Field(default=None, description="The claiming agent's display name")
    closed_at: datetime | None = None
    closed_by: str | None = Field(
        default=None, description="The user id that closed it; null when the visitor did"
    )
    fallback_sent_at: datetime | None = Field(
        default=None,
        description="When the visitor was sent the fallback message because nobody claimed "
        "the handoff within the bot's unclaimed_timeout_seconds",
    )


class HandoffNotice(BaseModel):
    """In a chat answer: a person has (or is about to take) the conversation, so the bot did
    not answer; the visitor's message was stored and passed on to the agents."""

    state: HandoffState
    agent_name: str | None = Field(default=None, description="Set once an agent claimed it")


class AgentReply(RequestModel):
    content: ReplyText


class AgentMessageOut(BaseModel):
    """A message an agent wrote into a handed-off conversation."""

    id: str
    conversation_id: str
    role: Literal["agent"] = "agent"
    content: str
    agent_name: str
    timestamp: datetime


class AgentInvite(RequestModel):
    """Invite a registered account to answer this bot's handed-off conversations."""

    email: Email
    display_name: DisplayName


class AgentOut(BaseModel):
    id: str
    chatbot_id: str
    user_id: str
    email: str
    display_name: str
    created_at: datetime


class VisitorHandoffOut(BaseModel):
    """A handoff as its visitor sees it."""

    conversation_id: str
    state: HandoffState
    agent_name: str | None = None
