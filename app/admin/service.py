"""Administration: who may do what to which account, and what the platform's LLM may cost."""

from datetime import datetime

from app.admin.repository import PlatformRepository
from app.admin.schemas import (
    LlmBudgetOut,
    LlmBudgetUpdate,
    ModelAllowlistOut,
    ModelAllowlistUpdate,
    PlatformCounts,
    UserAdminUpdate,
)
from app.analytics.service import llm_usage_out
from app.audit.documents import AuditAction
from app.audit.log import AuditTrail, user_target
from app.chat.budget import OwnerUsage, TokenBudget
from app.chat.budget_repository import OwnerLimits
from app.chatbots.allowlist import ModelAllowlist, ModelPolicy
from app.chatbots.repository import ChatbotRepository
from app.core.errors import ConflictError, NotFoundError
from app.core.schemas import Page, page_of
from app.core.security import utcnow
from app.quotas.schemas import PlanOut, PlanUpdate, UsageOut
from app.quotas.service import QuotaService
from app.users.documents import UserDocument
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import Role, UserOut, UserStatus
from app.users.service import user_out


class AdminService:
    def __init__(
        self,
        users: UserRepository,
        tokens: RefreshTokenRepository,
        chatbots: ChatbotRepository,
        platform: PlatformRepository,
        models: ModelAllowlist,
        budget: TokenBudget,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._chatbots = chatbots
        self._platform = platform
        self._models = models
        self._budget = budget

    async def list_users(
        self,
        *,
        status: UserStatus | None,
        role: Role | None,
        created_from: datetime | None,
        created_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[UserOut]:
        found = await self._users.list(
            status=status,
            role=role,
            created_from=created_from,
            created_to=created_to,
            cursor=cursor,
            limit=limit + 1,
        )
        return page_of(found, limit, user_out, "created_at")

    async def update_user(
        self, admin: UserDocument, user_id: str, request: UserAdminUpdate, audit: AuditTrail
    ) -> UserOut:
        fields = request.model_dump(exclude_none=True, mode="json")
        if user_id == admin["id"] and fields:
            raise ConflictError("Administrators cannot change their own role or status")
        target = await self._users.by_id(user_id)
        if target is None:
            raise NotFoundError("No such user")
        if not fields:
            return user_out(target)
        now = utcnow()
        updated = await self._users.update(user_id, {**fields, "updated_at": now})
        if updated is None:
            raise NotFoundError("No such user")
        if fields.get("status") == UserStatus.SUSPENDED:
            await self._tokens.revoke_all_for_user(user_id, now)
        changes = (
            (AuditAction.ROLE_CHANGE, target["role"], fields.get("role")),
            (AuditAction.STATUS_CHANGE, target["status"], fields.get("status")),
        )
        for action, before, after in changes:
            if after is not None and after != before:
                await audit.record(
                    action,
                    actor_id=admin["id"],
                    target=user_target(user_id),
                    details={"from": str(before), "to": str(after)},
                )
        return user_out(updated)

    async def counts(self) -> PlatformCounts:
        return PlatformCounts(
            users=await self._users.count(),
            chatbots=await self._chatbots.count(),
            conversations=await self._platform.count("conversations"),
            messages=await self._platform.count("messages"),
        )

    async def model_allowlist(self) -> ModelAllowlistOut:
        return _allowlist_out(await self._models.current())

    async def set_model_allowlist(
        self, admin: UserDocument, request: ModelAllowlistUpdate
    ) -> ModelAllowlistOut:
        """Applies to every pod at once; bots already on a removed model answer with the
        fallback model until their owners choose another."""
        policy = await self._models.replace(
            request.models, request.max_tokens_ceiling, admin["id"], utcnow()
        )
        return _allowlist_out(policy)

    async def llm_budget(self, user_id: str) -> LlmBudgetOut:
        if await self._users.by_id(user_id) is None:
            raise NotFoundError("No such user")
        return _budget_out(user_id, await self._budget.usage(user_id))

    async def set_llm_budget(
        self, admin: UserDocument, user_id: str, request: LlmBudgetUpdate
    ) -> LlmBudgetOut:
        if await self._users.by_id(user_id) is None:
            raise NotFoundError("No such user")
        limits = OwnerLimits(request.daily_tokens, request.monthly_tokens)
        return _budget_out(user_id, await self._budget.set_limits(user_id, limits, admin["id"]))

    async def plan(self, user_id: str, quotas: QuotaService) -> PlanOut:
        if await self._users.by_id(user_id) is None:
            raise NotFoundError("No such user")
        return await quotas.plan(user_id)

    async def set_plan(
        self, admin: UserDocument, user_id: str, request: PlanUpdate, quotas: QuotaService
    ) -> PlanOut:
        if await self._users.by_id(user_id) is None:
            raise NotFoundError("No such user")
        return await quotas.set_plan(user_id, request, admin["id"])

    async def usage(self, user_id: str, quotas: QuotaService) -> UsageOut:
        if await self._users.by_id(user_id) is None:
            raise NotFoundError("No such user")
        return await quotas.usage(user_id)


def _allowlist_out(policy: ModelPolicy) -> ModelAllowlistOut:
    return ModelAllowlistOut(
        models=list(policy.models),
        max_tokens_ceiling=policy.max_tokens_ceiling,
        default_model=policy.default_model,
        fallback_model=policy.fallback,
        updated_at=policy.updated_at,
    )


def _budget_out(user_id: str, usage: OwnerUsage) -> LlmBudgetOut:
    return LlmBudgetOut(
        **llm_usage_out(user_id, usage).model_dump(),
        own_daily_tokens=usage.own_limits.daily_tokens,
        own_monthly_tokens=usage.own_limits.monthly_tokens,
    )
