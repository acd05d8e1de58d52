"""Chat: request, response and event models (one event schema for SSE and WebSockets)."""

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.chatbots.schemas import AppearanceOut
from app.core.schemas import RequestModel

MessageRole = Literal["user", "assistant"]
Rating = Literal["up", "down"]
SessionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ChatRequest(RequestModel):
    message: Annotated[str, Field(min_length=1, max_length=4000)]
    conversation_id: Annotated[str, Field(max_length=64)] | None = None
    session_id: SessionId | None = None
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


EventName = Literal["start", "token", "sources", "end", "error"]


class ChatEvent(BaseModel):
    """start {conversation_id, message_id} → token {text}… → sources {sources} → end
    {message_id, answered, latency_ms}; or error {message} in place of the rest."""

    event: EventName
    data: dict[str, object]

    def sse(self) -> bytes:
        data = json.dumps(self.data, separators=(",", ":"))
        return f"event: {self.event}\ndata: {data}\n\n".encode()


class ConversationOut(BaseModel):
    id: str
    chatbot_id: str
    session_id: str | None
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


class PublicChatbot(BaseModel):
    """What the widget shows before the first message."""

    id: str
    name: str
    welcome_message: str
    appearance: AppearanceOut = AppearanceOut()
