"""HTTP dependencies of the audit log: the request's audit trail, the audit service, and the
recording of a route's outcome (every mutating administrator route uses it) and of a signed-in
caller's refusal (every administrator route)."""

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.audit.documents import AuditOutcome
from app.audit.log import AuditTrail
from app.audit.repository import AuditRepository
from app.audit.service import AuditService
from app.container import ContainerDep
from app.core.errors import DomainError

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def audit_trail(request: Request) -> AuditTrail:
    return AuditTrail.of(request)


AuditTrailDep = Annotated[AuditTrail, Depends(audit_trail)]


async def get_audit_service(container: ContainerDep) -> AuditService:
    return AuditService(AuditRepository(container.resources.reads.database("listing")))


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]


def _path_target(request: Request) -> str | None:
    """The path parameter naming what the route acts on (`user_id` → `user:<id>`)."""
    for name, value in request.path_params.items():
        if name.endswith("_id"):
            return f"{name.removesuffix('_id')}:{value}"
    return None


def _route_action(request: Request, prefix: str) -> str:
    route = request.scope.get("route")
    return f"{prefix}.{getattr(route, 'name', request.url.path)}"


def _refusal_status(error: Exception) -> int:
    if isinstance(error, DomainError):
        return int(error.status)
    if isinstance(error, HTTPException):
        return error.status_code
    return 500


@contextlib.asynccontextmanager
async def denials_recorded(request: Request, prefix: str, caller_id: str) -> AsyncIterator[None]:
    """Records a signed-in caller's refusal by the access check inside, whatever the method,
    as `<prefix>.<route name>` with outcome `denied` and the refusal's status. The entry is the
    caller's own (they see it in `GET /api/audit`); nothing was done to the route's target."""
    try:
        yield
    except DomainError as error:
        await AuditTrail.of(request).record(
            _route_action(request, prefix),
            actor_id=caller_id,
            target=_path_target(request),
            owner_id=caller_id,
            outcome=AuditOutcome.DENIED,
            details={"status": _refusal_status(error)},
        )
        raise


@contextlib.asynccontextmanager
async def audited_route(request: Request, prefix: str, actor_id: str) -> AsyncIterator[None]:
    """Records a mutating route as `<prefix>.<route name>` with its outcome; reads pass."""
    if request.method in _READS:
        yield
        return
    action = _route_action(request, prefix)
    target = _path_target(request)
    trail = AuditTrail.of(request)
    try:
        yield
    except Exception as error:
        await trail.record(
            action,
            actor_id=actor_id,
            target=target,
            outcome=AuditOutcome.FAILURE,
            details={"status": _refusal_status(error)},
        )
        raise
    await trail.record(action, actor_id=actor_id, target=target)
