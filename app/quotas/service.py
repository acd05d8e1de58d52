"""Quotas as owners and administrators see them: the usage view, and owners' plans."""

from app.core.config import Settings
from app.core.periods import Periods
from app.core.resources import Resources
from app.core.security import utcnow
from app.quotas.documents import PlanDocument
from app.quotas.plans import OwnerPlan, effective_plan
from app.quotas.repository import (
    PlanRepository,
    StockRepository,
    UsageRepository,
    chatbot_scope,
    owner_scope,
)
from app.quotas.schemas import (
    ChatbotUsage,
    EffectivePlan,
    PlanOut,
    PlanUpdate,
    QuotaName,
    QuotaUsage,
    UsageOut,
)


def _plan_view(plan: OwnerPlan) -> EffectivePlan:
    return EffectivePlan(
        max_chatbots=plan.max_chatbots.value,
        max_sources_per_chatbot=plan.max_sources_per_chatbot.value,
        max_chars_per_chatbot=plan.max_chars_per_chatbot.value,
        messages_per_month=plan.messages_per_month,
    )


class QuotaService:
    def __init__(self, resources: Resources) -> None:
        self._settings: Settings = resources.settings
        self._plans = PlanRepository(resources)
        self._usage = UsageRepository(resources)
        self._stock = StockRepository(resources)

    async def plan(self, user_id: str) -> PlanOut:
        stored = await self._plans.get(user_id)
        own = PlanUpdate.model_validate(
            {name: stored.get(name) for name in PlanUpdate.model_fields} if stored else {}
        )
        return PlanOut(
            user_id=user_id,
            own=own,
            effective=_plan_view(effective_plan(self._settings, stored)),
            updated_at=stored["updated_at"] if stored else None,
        )

    async def set_plan(self, user_id: str, request: PlanUpdate, admin_id: str) -> PlanOut:
        """Replaces the owner's plan; caps apply to what is created next (nothing is removed)."""
        plan: PlanDocument = {
            "user_id": user_id,
            "max_chatbots": request.max_chatbots,
            "max_sources_per_chatbot": request.max_sources_per_chatbot,
            "max_chars_per_chatbot": request.max_chars_per_chatbot,
            "messages_per_month": request.messages_per_month,
            "updated_by": admin_id,
            "updated_at": utcnow(),
        }
        await self._plans.put(plan)
        return await self.plan(user_id)

    async def usage(self, user_id: str) -> UsageOut:
        periods = Periods.at(utcnow())
        plan = effective_plan(self._settings, await self._plans.get(user_id))
        bots = await self._stock.chatbots(user_id)
        sources = await self._stock.sources(user_id)
        counted = await self._usage.for_owner(user_id, periods.month)
        owner = counted.get(owner_scope(user_id))
        quotas = [
            QuotaUsage(
                quota=QuotaName.CHATBOTS,
                used=len(bots),
                limit=plan.max_chatbots.value,
                resets_at=None,
            ),
            QuotaUsage(
                quota=QuotaName.OWNER_MESSAGES_PER_MONTH,
                used=owner["messages"] if owner else 0,
                limit=plan.messages_per_month,
                resets_at=periods.month_ends,
            ),
        ]
        chatbots = []
        for bot in bots:
            record = counted.get(chatbot_scope(bot.chatbot_id))
            own = bot.quotas or {}
            source_count, chars = sources.get(bot.chatbot_id, (0, 0))
            today = record["days"].get(periods.day, 0) if record else 0
            bot_quotas = [
                QuotaUsage(
                    quota=QuotaName.CHATBOT_MESSAGES_PER_DAY,
                    used=today,
                    limit=own.get("messages_per_day"),
                    resets_at=periods.day_ends,
                ),
                QuotaUsage(
                    quota=QuotaName.CHATBOT_MESSAGES_PER_MONTH,
                    used=record["messages"] if record else 0,
                    limit=own.get("messages_per_month"),
                    resets_at=periods.month_ends,
                ),
                QuotaUsage(
                    quota=QuotaName.SOURCES_PER_CHATBOT,
                    used=source_count,
                    limit=plan.max_sources_per_chatbot.value,
                    resets_at=None,
                ),
                QuotaUsage(
                    quota=QuotaName.CHARS_PER_CHATBOT,
                    used=chars,
                    limit=plan.max_chars_per_chatbot.value,
                    resets_at=None,
                ),
            ]
            chatbots.append(
                ChatbotUsage(chatbot_id=bot.chatbot_id, name=bot.name, quotas=bot_quotas)
            )
        return UsageOut(user_id=user_id, plan=_plan_view(plan), quotas=quotas, chatbots=chatbots)
