"""Erasure on request (GDPR art. 17): a visitor's data on one bot, or an owner's whole account.
Both answer 202 with the erasure to poll; the worker carries it out (`app.governance.erasure`).
The administrator's erasure of any account is in `app.admin.router`."""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.audit.dependencies import AuditTrailDep
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.governance.dependencies import ErasureServiceDep
from app.governance.schemas import (
    AccountErasureRequest,
    ErasureOut,
    ErasureStatusOut,
    VisitorErasureRequest,
)
from app.users.dependencies import CurrentUser

router = APIRouter(tags=["erasures"])
ErasureId = Annotated[str, Path(max_length=64, description="The erasure's id")]


@router.post(
    "/chatbots/{chatbot_id}/erasures",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404, 422),
)
async def request_visitor_erasure(
    body: VisitorErasureRequest,
    chatbot: OwnedChatbot,
    service: ErasureServiceDep,
    audit: AuditTrailDep,
    response: Response,
) -> ErasureOut:
    """Erases everything about one visitor of the bot: their conversations, messages,
    feedback, leads, handoffs, webhook deliveries and cached state. Asking again while it is
    under way returns the same erasure."""
    erasure = await service.request_visitor(chatbot, body, audit)
    response.headers["Location"] = f"/api/chatbots/{chatbot['id']}/erasures/{erasure.id}"
    return erasure


@router.get("/chatbots/{chatbot_id}/erasures/{erasure_id}", responses=problem_responses(404))
async def read_visitor_erasure(
    erasure_id: ErasureId, chatbot: OwnedChatbot, service: ErasureServiceDep
) -> ErasureOut:
    """The erasure's status and counts; once done, its receipt."""
    return await service.visitor_erasure(chatbot, erasure_id)


@router.delete(
    "/users/me",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["users"],
    responses=problem_responses(401, 403, 429),
)
async def delete_me(
    body: AccountErasureRequest,
    user: CurrentUser,
    service: ErasureServiceDep,
    audit: AuditTrailDep,
    response: Response,
) -> ErasureOut:
    """Deletes the account and everything it owns: its use ends at once (every token stops
    working), its data is erased in the background. Poll `GET /api/erasures/{id}`."""
    erasure = await service.request_own_account(user, body.password, audit)
    response.headers["Location"] = f"/api/erasures/{erasure.id}"
    return erasure


@router.get("/erasures/{erasure_id}", responses=problem_responses(404))
async def read_account_erasure(
    erasure_id: ErasureId, service: ErasureServiceDep
) -> ErasureStatusOut:
    """An account erasure's status and counts. No credentials: the account is gone; the
    erasure's id (random, given only to whoever asked) is what lets one read it."""
    return await service.account_erasure(erasure_id)
