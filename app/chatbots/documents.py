"""What the chatbots collection stores: a bot's settings, status and knowledge version."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.chatbots.schemas import (
    ChatbotStatus,
    FieldMode,
    LeadTrigger,
    Position,
    Provider,
    Theme,
    Visibility,
)
from app.quotas.documents import BotQuotasDocument


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


class HandoffSettingsDocument(TypedDict):
    enabled: bool
    after_unanswered: int
    unclaimed_timeout_seconds: int
    fallback_message: str


class LeadFormFieldsDocument(TypedDict):
    name: FieldMode
    email: FieldMode
    phone: FieldMode
    company: FieldMode
    message: FieldMode


class LeadFormDocument(TypedDict):
    enabled: bool
    trigger: LeadTrigger
    after_messages: int
    fields: LeadFormFieldsDocument
    consent_text: str
    title: str
    submit_label: str


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
    # Absent on bots created before human handoff (read as the defaults: off).
    handoff: NotRequired[HandoffSettingsDocument]
    # Absent on bots created before lead capture (read as the defaults: off).
    lead_form: NotRequired[LeadFormDocument]
    # Absent until the bot's knowledge first changes (read as 0).
    knowledge_version: NotRequired[int]
    # Absent on bots created before quotas (read as unlimited).
    quotas: NotRequired[BotQuotasDocument]
    # Days a conversation is kept after its last message; absent or null: kept.
    retention_days: NotRequired[int | None]
