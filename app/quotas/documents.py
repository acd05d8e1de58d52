"""What the quota collections store: owners' plans (`plans`) and each month's message counts
(`usage`); and a bot's own message quotas, kept on its chatbot document."""

from datetime import datetime
from typing import TypedDict


class BotQuotasDocument(TypedDict, total=False):
    """On a chatbot; None or absent: unlimited (a PATCH may have set only some)."""

    messages_per_day: int | None
    messages_per_month: int | None
    session_messages_per_hour: int | None


class PlanDocument(TypedDict):
    """An owner's plan; a None limit: the platform's default."""

    user_id: str
    max_chatbots: int | None
    max_sources_per_chatbot: int | None
    max_chars_per_chatbot: int | None
    messages_per_month: int | None
    updated_by: str
    updated_at: datetime


class UsageDocument(TypedDict):
    """Messages counted in one UTC month for one scope (`chatbot:<id>` or `owner:<id>`), with
    each day's share."""

    scope: str
    month: str
    user_id: str
    chatbot_id: str | None
    messages: int
    days: dict[str, int]
    updated_at: datetime
