"""The audit log: all of it for administrators, their own entries for owners.

The audit log sits below the domains that record into it (users among them), so it cannot
import their access rules: the application hands the caller dependencies in (`app.api`).
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.audit.dependencies import AuditServiceDep, denials_recorded
from app.audit.schemas import (
    ActionFilter,
    ActorFilter,
    AuditEntryOut,
    Since,
    TargetFilter,
    Until,
)
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page

if TYPE_CHECKING:
    from app.users.documents import UserDocument

UserDependency = Callable[..., Awaitable["UserDocument"]]


def audit_router(current_user: UserDependency, admin_user: UserDependency) -> APIRouter:
    """The routes, behind the users domain's `CurrentUser` and `AdminUser` checks."""
    router = APIRouter(tags=["audit"], responses=problem_responses(401))

    async def audit_reader(
        request: Request, user: Annotated["UserDocument", Depends(current_user)]
    ) -> "UserDocument":
        """An administrator; a signed-in user refused here leaves an `admin.*` `denied` entry."""
        async with denials_recorded(request, "admin", user["id"]):
            admin = await admin_user(user)
        return admin

    @router.get("/admin/audit", responses=problem_responses(403))
    async def list_audit_entries(
        _admin: Annotated[Mapping[str, Any], Depends(audit_reader)],
        service: AuditServiceDep,
        action: ActionFilter = None,
        actor_id: ActorFilter = None,
        target: TargetFilter = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AuditEntryOut]:
        """Every audit entry, newest first, filtered by action, actor, target and time range."""
        return await service.list_all(
            action=action,
            actor_id=actor_id,
            target=target,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )

    @router.get("/audit")
    async def list_own_audit_entries(
        user: Annotated[Mapping[str, Any], Depends(current_user)],
        service: AuditServiceDep,
        action: ActionFilter = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AuditEntryOut]:
        """The caller's audit entries, newest first: what they did, and what was done to
        their account or to what it owns (an administrator's change, a failed login). The
        client address and request id show only on entries the caller is the actor of."""
        return await service.list_own(
            user["id"], action=action, since=since, until=until, cursor=cursor, limit=limit
        )

    return router
