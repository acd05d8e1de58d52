"""Administration endpoints: administrators only."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from app.admin.repository import PlatformRepository
from app.admin.schemas import (
    LlmBudgetOut,
    LlmBudgetUpdate,
    ModelAllowlistOut,
    ModelAllowlistUpdate,
    PlatformCounts,
    UserAdminUpdate,
)
from app.admin.service import AdminService
from app.analytics.dependencies import AnalyticsServiceDep, From, To, Zone
from app.analytics.schemas import PlatformStats
from app.audit.dependencies import AuditTrailDep, audited_route, denials_recorded
from app.chat.budget import TokenBudget
from app.chatbots.allowlist import ModelAllowlist
from app.chatbots.repository import ChatbotRepository
from app.container import ContainerDep
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.governance.dependencies import ErasureServiceDep
from app.governance.schemas import ErasureOut
from app.quotas.dependencies import QuotaServiceDep
from app.quotas.schemas import PlanOut, PlanUpdate, UsageOut
from app.users.access import require_admin
from app.users.dependencies import AdminUser, CurrentUser
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import Role, UserOut, UserStatus


async def get_admin_service(container: ContainerDep) -> AdminService:
    resources = container.resources
    return AdminService(
        UserRepository(resources),
        RefreshTokenRepository(resources.db),
        ChatbotRepository(resources),
        PlatformRepository(resources.reads),
        ModelAllowlist(resources),
        TokenBudget(resources),
    )


AdminServiceDep = Annotated[AdminService, Depends(get_admin_service)]
UserId = Annotated[str, Path(max_length=64)]


async def audit_admin_action(request: Request, user: CurrentUser) -> AsyncIterator[None]:
    """Every mutating administrator route leaves an audit entry `admin.<route name>`, and so
    does any administrator route refused to a signed-in user (outcome `denied`)."""
    async with denials_recorded(request, "admin", user["id"]):
        admin = require_admin(user)
    async with audited_route(request, "admin", admin["id"]):
        yield


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(audit_admin_action, scope="function")],
)


@router.get("/users")
async def list_users(
    admin: AdminUser,
    service: AdminServiceDep,
    status: UserStatus | None = None,
    role: Role | None = None,
    created_from: Annotated[datetime | None, Query(description="Inclusive, ISO 8601")] = None,
    created_to: Annotated[datetime | None, Query(description="Exclusive, ISO 8601")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[UserOut]:
    """Users, newest first, filtered by status, role and creation range."""
    return await service.list_users(
        status=status,
        role=role,
        created_from=created_from,
        created_to=created_to,
        cursor=cursor,
        limit=limit,
    )


@router.patch("/users/{user_id}", responses=problem_responses(404, 409))
async def update_user(
    user_id: UserId,
    body: UserAdminUpdate,
    admin: AdminUser,
    service: AdminServiceDep,
    audit: AuditTrailDep,
) -> UserOut:
    """Changes a user's role or status; a suspension cuts off their tokens at once."""
    return await service.update_user(admin, user_id, body, audit)


@router.post(
    "/users/{user_id}/erasure",
    status_code=202,
    responses=problem_responses(404, 409),
)
async def erase_user(
    user_id: UserId,
    admin: AdminUser,
    erasures: ErasureServiceDep,
    audit: AuditTrailDep,
) -> ErasureOut:
    """Deletes an account and everything it owns, as `DELETE /api/users/me` does: the account
    is suspended at once and erased in the background (poll `GET /api/erasures/{id}`)."""
    return await erasures.request_account(admin, user_id, audit)


@router.get("/stats", responses=problem_responses(422))
async def platform_stats(
    admin: AdminUser,
    service: AnalyticsServiceDep,
    start: From = None,
    end: To = None,
    timezone: Zone = "UTC",
) -> PlatformStats:
    """Platform totals and daily series: sign-ups, active users, bots, conversations, messages."""
    return await service.platform(start, end, timezone)


@router.get("/counts")
async def platform_counts(admin: AdminUser, service: AdminServiceDep) -> PlatformCounts:
    return await service.counts()


@router.get("/models")
async def get_model_allowlist(admin: AdminUser, service: AdminServiceDep) -> ModelAllowlistOut:
    """The models bots may use on the platform's LLM key, and the max_tokens ceiling."""
    return await service.model_allowlist()


@router.put("/models", responses=problem_responses(422))
async def put_model_allowlist(
    body: ModelAllowlistUpdate, admin: AdminUser, service: AdminServiceDep
) -> ModelAllowlistOut:
    """Replaces the allowlist and ceiling. Creating or changing a bot outside them is then a
    422; a bot already on a removed model answers with the fallback model."""
    return await service.set_model_allowlist(admin, body)


@router.get("/users/{user_id}/llm-budget", responses=problem_responses(404))
async def get_llm_budget(
    user_id: UserId, admin: AdminUser, service: AdminServiceDep
) -> LlmBudgetOut:
    """An owner's LLM tokens spent this UTC day and month, their limits and their own ones."""
    return await service.llm_budget(user_id)


@router.put("/users/{user_id}/llm-budget", responses=problem_responses(404, 422))
async def put_llm_budget(
    user_id: UserId,
    body: LlmBudgetUpdate,
    admin: AdminUser,
    service: AdminServiceDep,
) -> LlmBudgetOut:
    """Sets an owner's own daily and monthly limits (null: the platform's default, 0:
    unlimited); the next chat turn is checked against them."""
    return await service.set_llm_budget(admin, user_id, body)


@router.get("/users/{user_id}/plan", responses=problem_responses(404))
async def get_plan(
    user_id: UserId,
    admin: AdminUser,
    service: AdminServiceDep,
    quotas: QuotaServiceDep,
) -> PlanOut:
    """An owner's plan: the limits an administrator set, and those that apply."""
    return await service.plan(user_id, quotas)


@router.put("/users/{user_id}/plan", responses=problem_responses(404, 422))
async def put_plan(
    user_id: UserId,
    body: PlanUpdate,
    admin: AdminUser,
    service: AdminServiceDep,
    quotas: QuotaServiceDep,
) -> PlanOut:
    """Replaces an owner's plan (null: the platform's default); it applies to the next bot,
    source and chat message. Nothing the owner has is removed."""
    return await service.set_plan(admin, user_id, body, quotas)


@router.get("/users/{user_id}/usage", responses=problem_responses(404))
async def get_user_usage(
    user_id: UserId,
    admin: AdminUser,
    service: AdminServiceDep,
    quotas: QuotaServiceDep,
) -> UsageOut:
    """What `GET /api/usage` shows the owner."""
    return await service.usage(user_id, quotas)
