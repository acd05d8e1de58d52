"""Quotas as the API shows them: a bot's message quotas, an owner's plan, and usage."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel


class QuotaName(StrEnum):
    """Named in refusals (`quota`), in usage and in the rejection metric's label."""

    CHATBOT_MESSAGES_PER_DAY = "chatbot_messages_per_day"
    CHATBOT_MESSAGES_PER_MONTH = "chatbot_messages_per_month"
    SESSION_MESSAGES_PER_HOUR = "session_messages_per_hour"
    OWNER_MESSAGES_PER_MONTH = "owner_messages_per_month"
    CHATBOTS = "chatbots"
    SOURCES_PER_CHATBOT = "sources_per_chatbot"
    CHARS_PER_CHATBOT = "chars_per_chatbot"


MessageLimit = Annotated[int, Field(ge=1, le=1_000_000_000)]


class BotQuotas(RequestModel):
    """A bot's message quotas (UTC periods); null: unlimited. In a PATCH only the fields sent
    change, and null removes a quota."""

    messages_per_day: MessageLimit | None = None
    messages_per_month: MessageLimit | None = None
    session_messages_per_hour: MessageLimit | None = Field(
        default=None,
        description="Per visitor session (the `session_id` the widget sends), per clock hour",
    )


class BotQuotasOut(BaseModel):
    messages_per_day: int | None = None
    messages_per_month: int | None = None
    session_messages_per_hour: int | None = None


class PlanUpdate(RequestModel):
    """An owner's plan, replaced whole; null: the platform's default (the setting named)."""

    max_chatbots: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="null: MAX_CHATBOTS_PER_USER"
    )
    max_sources_per_chatbot: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="null: INGEST_MAX_SOURCES_PER_BOT"
    )
    max_chars_per_chatbot: Annotated[int, Field(ge=1, le=10**12)] | None = Field(
        default=None, description="Stored characters of knowledge; null: INGEST_MAX_CHARS_PER_BOT"
    )
    messages_per_month: Annotated[int, Field(ge=0, le=10**12)] | None = Field(
        default=None,
        description="Chat messages of all the owner's bots per UTC month, 0 unlimited; "
        "null: PLAN_MESSAGES_PER_MONTH",
    )


class EffectivePlan(BaseModel):
    """The limits that apply to the owner now (their plan's, else the platform's)."""

    max_chatbots: int
    max_sources_per_chatbot: int
    max_chars_per_chatbot: int
    messages_per_month: int | None = Field(description="null: unlimited")


class PlanOut(BaseModel):
    user_id: str
    own: PlanUpdate = Field(description="What an administrator set; null fields: the default")
    effective: EffectivePlan
    updated_at: datetime | None = Field(description="null: the owner has no plan of their own")


class QuotaUsage(BaseModel):
    quota: QuotaName
    used: int
    limit: int | None = Field(description="null: unlimited")
    resets_at: datetime | None = Field(description="null: a stock, which does not reset")


class ChatbotUsage(BaseModel):
    chatbot_id: str
    name: str
    quotas: list[QuotaUsage]


class UsageOut(BaseModel):
    """The owner's quotas and what is used of each (visitor sessions' hourly quotas are
    counted per session and not listed)."""

    user_id: str
    plan: EffectivePlan
    quotas: list[QuotaUsage] = Field(description="The owner's: chatbots, messages this month")
    chatbots: list[ChatbotUsage] = Field(
        description="Each bot's: messages today and this month, sources, stored characters"
    )
