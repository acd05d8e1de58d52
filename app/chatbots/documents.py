"""What the chatbots collection stores: a bot's settings, status and knowledge version."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.chatbots.schemas import ChatbotStatus, Position, Provider, Theme, Visibility


class ModelSettingsDocument(TypedDict):
    provider: Provider
    model: str
    temperature: float
    max_tokens: int


class RetrievalSettingsDocument(TypedDict):
    top_k: int
    score_threshold: float
    chunk_size: int
    chunk_overlap: int


class AppearanceDocument(TypedDict):
    accent_color: str
    position: Position
    title: str
    avatar_url: str | None
    theme: Theme
    suggested_questions: list[str]


class ChatbotDocument(TypedDict):
    id: str
    user_id: str
    name: str
    description: str
    system_prompt: str
    welcome_message: str
    model: ModelSettingsDocument
    retrieval: RetrievalSettingsDocument
    visibility: Visibility
    allowed_origins: list[str]
    status: ChatbotStatus
    created_at: datetime
    updated_at: datetime
    # Absent on bots created before the widget settings (read as the defaults).
    appearance: NotRequired[AppearanceDocument]
    # Absent until the bot's knowledge first changes (read as 0).
    knowledge_version: NotRequired[int]
