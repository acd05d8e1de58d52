"""Leads: a visitor's submit from the widget (public, under the `public` rate limit), the same
for the bot's owner or API key, and the owner's listing, export and deletion."""

import inspect
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime

from app.audit.dependencies import AuditTrailDep
from app.audit.documents import AuditAction
from app.chatbots.cors import Origin, allow_origin, answer_preflight
from app.chatbots.dependencies import BotCaller, OwnedChatbot, PublicBot
from app.core.errors import DomainError, problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.leads.dependencies import ACCEPTED_ORIGIN, LeadServiceDep, VisitorBot
from app.leads.documents import LeadOrigin
from app.leads.schemas import ExportFormat, LeadOut, LeadSubmit

Since = Annotated[
    AwareDatetime | None,
    Query(description="Leads created at or after this (ISO 8601 with offset)"),
]
Until = Annotated[
    AwareDatetime | None, Query(description="Leads created before this (ISO 8601 with offset)")
]
LeadId = Annotated[str, Path(max_length=64)]
UPDATED: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {
        "model": LeadOut,
        "description": "The session already had a lead: it is updated with these details",
    }
}


class VisitorRoute(APIRoute):
    """A refusal once the bot has accepted the page's origin (a missing field, another
    session's conversation) carries the CORS header, so the widget can tell the visitor why."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_readably(request: Request) -> Response:
            try:
                return await handle(request)
            except (DomainError, RequestValidationError) as error:
                origin = request.scope.get(ACCEPTED_ORIGIN)
                if origin is None:
                    raise
                kind = DomainError if isinstance(error, DomainError) else RequestValidationError
                response = request.app.exception_handlers[kind](request, error)
                if inspect.isawaitable(response):
                    response = await response
                allow_origin(response, origin)
                return response  # type: ignore[no-any-return]

        return handle_readably


public_router = APIRouter(
    prefix="/public/chatbots/{chatbot_id}", tags=["widget"], route_class=VisitorRoute
)
router = APIRouter(prefix="/chatbots/{chatbot_id}/leads", tags=["leads"])


@public_router.options("/leads", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
async def preflight(chatbot: PublicBot, response: Response, origin: Origin = None) -> None:
    answer_preflight(response, origin, "POST, OPTIONS")


@public_router.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    responses={**UPDATED, **problem_responses(403, 404, 409, 422, 429)},
)
async def widget_lead(
    body: LeadSubmit,
    chatbot: VisitorBot,
    service: LeadServiceDep,
    response: Response,
    origin: Origin = None,
) -> LeadOut:
    """A visitor's details from the bot's lead form: 201 for the session's first lead, 200 when
    a later submit from the same session updates it. 409 when the bot's form is off."""
    lead, created = await service.submit(chatbot, body, LeadOrigin.WIDGET)
    allow_origin(response, origin)
    if not created:
        response.status_code = status.HTTP_200_OK
    return lead


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**UPDATED, **problem_responses(401, 404, 409, 422)},
)
async def submit_lead(
    body: LeadSubmit, chatbot: BotCaller, service: LeadServiceDep, response: Response
) -> LeadOut:
    """A lead for a visitor of the owner's own (owner token or the bot's API key), under the
    same form rules as the widget's."""
    lead, created = await service.submit(chatbot, body, LeadOrigin.API)
    if not created:
        response.status_code = status.HTTP_200_OK
    return lead


@router.get("", responses=problem_responses(404))
async def list_leads(
    chatbot: OwnedChatbot,
    service: LeadServiceDep,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[LeadOut]:
    """The bot's leads, newest first, created in [since, until)."""
    return await service.list(chatbot, since, until, cursor, limit)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines (`format=jsonl`) or CSV (`format=csv`), oldest first",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(404),
    },
)
async def export_leads(
    chatbot: OwnedChatbot,
    service: LeadServiceDep,
    audit: AuditTrailDep,
    format: Annotated[ExportFormat, Query()] = "jsonl",
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """The bot's leads created in [since, until), streamed; CSV cells never run as formulas."""
    await audit.record(
        AuditAction.LEADS_EXPORT,
        actor_id=chatbot["user_id"],
        target=f"chatbot:{chatbot['id']}",
        owner_id=chatbot["user_id"],
        details={"format": format},
    )
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    filename = f"leads-{chatbot['id']}.{format}"
    return StreamingResponse(
        service.export(chatbot, since, until, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.delete(
    "/{lead_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_lead(lead_id: LeadId, chatbot: OwnedChatbot, service: LeadServiceDep) -> None:
    """Deletes one lead (for example at the visitor's request)."""
    await service.delete(chatbot, lead_id)
