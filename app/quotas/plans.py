"""Owners' plans: the limits an administrator set for one owner, over the platform's defaults
(MAX_CHATBOTS_PER_USER, INGEST_MAX_SOURCES_PER_BOT, INGEST_MAX_CHARS_PER_BOT,
PLAN_MESSAGES_PER_MONTH). The chatbots and sources domains ask here for the caps they check."""

from dataclasses import dataclass

from app.core.config import Settings
from app.core.resources import Resources
from app.quotas.documents import PlanDocument
from app.quotas.repository import PlanRepository
from app.quotas.schemas import QuotaName


@dataclass(frozen=True, slots=True)
class Limit:
    """One stock cap as it applies to an owner, and where it comes from (for the refusal)."""

    quota: QuotaName
    value: int
    setting: str | None  # the setting it comes from; None: the owner's plan

    @property
    def origin(self) -> str:
        return self.setting or "the account's plan"


@dataclass(frozen=True, slots=True)
class OwnerPlan:
    max_chatbots: Limit
    max_sources_per_chatbot: Limit
    max_chars_per_chatbot: Limit
    messages_per_month: int | None  # None: unlimited


def effective_plan(settings: Settings, plan: PlanDocument | None) -> OwnerPlan:
    def limit(quota: QuotaName, own: int | None, default: int, setting: str) -> Limit:
        return Limit(quota, default, setting) if own is None else Limit(quota, own, None)

    own_messages = plan["messages_per_month"] if plan else None
    messages = settings.plan_messages_per_month if own_messages is None else own_messages
    return OwnerPlan(
        max_chatbots=limit(
            QuotaName.CHATBOTS,
            plan["max_chatbots"] if plan else None,
            settings.max_chatbots_per_user,
            "MAX_CHATBOTS_PER_USER",
        ),
        max_sources_per_chatbot=limit(
            QuotaName.SOURCES_PER_CHATBOT,
            plan["max_sources_per_chatbot"] if plan else None,
            settings.ingest_max_sources_per_bot,
            "INGEST_MAX_SOURCES_PER_BOT",
        ),
        max_chars_per_chatbot=limit(
            QuotaName.CHARS_PER_CHATBOT,
            plan["max_chars_per_chatbot"] if plan else None,
            settings.ingest_max_chars_per_bot,
            "INGEST_MAX_CHARS_PER_BOT",
        ),
        messages_per_month=messages or None,
    )


class Plans:
    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self._repository = PlanRepository(resources)

    async def of(self, user_id: str) -> OwnerPlan:
        return effective_plan(self._settings, await self._repository.get(user_id))
