"""Chat: request, response and event models (one event schema for SSE and WebSockets)."""

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.chatbots.schemas import AppearanceOut, ShownLeadForm
from app.core.schemas import RequestModel
from app.handoff.schemas import HandoffNotice

# "agent": a person answering a handed-off conversation (`app.handoff`).
MessageRole = Literal["user", "assistant", "agent"]
Rating = Literal["up", "down"]
SessionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
EndUserId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.@:-]+$",
        description="The embedding site's own id for its signed-in user, stored on a new "
        "conversation so the user's data can be erased by it",
    ),
]


class ChatRequest(RequestModel):
    message: Annotated[str, Field(min_length=1, max_length=4000)]
    conversation_id: Annotated[str, Field(max_length=64)] | None = None
    session_id: SessionId | None = None
    end_user_id: EndUserId | None = None
    stream: bool = Field(default=False, description="Answer as Server-Sent Events")


class Citation(BaseModel):
    index: int = Field(description="The [n] marker in the answer")
    source_id: str
    chunk_id: str
    title: str
    url: str | None = None
    heading: str
    relevance: float


class ChatResponse(BaseModel):
    conversation_id: str
    message_id: str
    answer: str
    answered: bool = Field(description="False when the bot said it does not know")
    sources: list[Citation]
    latency_ms: int
    handoff: HandoffNotice | None = Field(
        default=None,
        description="Set when a person has the conversation (or was just asked to take it). "
        "While a handoff waits or is claimed the bot does not answer: `answer` is empty, "
        "`message_id` is the visitor's stored message, and the agent's reply arrives on the "
        "visitor WebSocket (topic `conversation`)",
    )


EventName = Literal["start", "token", "sources", "handoff", "end", "error"]


class ChatEvent(BaseModel):
    """start {conversation_id, message_id} → token {text}… → sources {sources} → end
    {message_id, answered, latency_ms}; or error {message} in place of the rest. A `handoff`
    {state, agent_name} comes before `end` when the conversation is with a person: then, if it
    already was, there are no tokens and no sources."""

    event: EventName
    data: dict[str, object]

    def sse(self) -> bytes:
        data = json.dumps(self.data, separators=(",", ":"))
        return f"event: {self.event}\ndata: {data}\n\n".encode()


class ConversationOut(BaseModel):
    id: str
    chatbot_id: str
    session_id: str | None
    end_user_id: str | None = None
    started_at: datetime
    last_message_at: datetime
    message_count: int


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    role: MessageRole
    content: str
    timestamp: datetime
    answered: bool | None = None
    citations: list[Citation] = Field(default_factory=list)
    latency_ms: int | None = None
    feedback: "FeedbackOut | None" = None
    agent_name: str | None = Field(default=None, description="Who wrote an agent's message")


class Feedback(RequestModel):
    rating: Rating
    comment: Annotated[str, Field(max_length=2000)] | None = None


class FeedbackOut(BaseModel):
    rating: Rating
    comment: str | None = None
    at: datetime | None = Field(default=None, description="When it was given")


class PublicFeedback(Feedback):
    """A widget visitor's rating of an answer in one of their own conversations."""

    session_id: SessionId


class ConversationDetail(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    next_after: datetime | None = Field(
        default=None, description="Pass as `after` for the next page of messages; null at the end"
    )


class PublicChatRequest(ChatRequest):
    """A widget visitor's message: the visitor's session id is required."""

    session_id: SessionId


class PublicHandoff(BaseModel):
    """Whether the widget offers "Talk to a person"."""

    enabled: bool = False


class PublicChatbot(BaseModel):
    """What the widget shows before the first message."""

    id: str
    name: str
    welcome_message: str
    appearance: AppearanceOut = AppearanceOut()
    handoff: PublicHandoff = PublicHandoff()
    lead_form: ShownLeadForm = None
