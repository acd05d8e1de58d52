"""What the chatbots collection stores: a bot's settings, status and knowledge version."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.chatbots.schemas import ChatbotStatus, Provider, Visibility


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
    # Absent until the bot's knowledge first changes (read as 0).
    knowledge_version: NotRequired[int]
