"""What the chat domain stores: conversations and their messages."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.chat.schemas import MessageRole, Rating
from app.handoff.documents import HandoffDocument


class ConversationDocument(TypedDict):
    id: str
    chatbot_id: str
    user_id: str  # the bot's owner
    session_id: str | None  # the widget visitor's session
    end_user_id: NotRequired[str]  # the embedding site's id for its user, when it gave one
    started_at: datetime
    last_message_at: datetime
    message_count: int
    # The current (or last) handoff to a person; absent when there never was one.
    handoff: NotRequired[HandoffDocument]


class CitationDocument(TypedDict):
    index: int
    source_id: str
    chunk_id: str
    title: str
    url: str | None
    heading: str
    relevance: float


class TokenCountsDocument(TypedDict):
    prompt: int
    completion: int


class FeedbackDocument(TypedDict):
    rating: Rating
    comment: str | None
    at: datetime


class MessageDocument(TypedDict):
    """A visitor's question or the bot's answer; the answer-only fields are absent on questions."""

    id: str
    conversation_id: str
    chatbot_id: str
    role: MessageRole
    content: str
    timestamp: datetime
    answered: NotRequired[bool]
    citations: NotRequired[list[CitationDocument]]
    retrieval_scores: NotRequired[list[float]]
    latency_ms: NotRequired[int]
    tokens: NotRequired[TokenCountsDocument]
    feedback: NotRequired[FeedbackDocument]
    # On an agent's message (role "agent"), and on the fallback sent when nobody took a handoff.
    agent_id: NotRequired[str]
    agent_name: NotRequired[str]
    handoff_fallback: NotRequired[bool]
