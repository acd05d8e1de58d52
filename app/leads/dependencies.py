"""HTTP dependencies of leads: the service, and the public bot a visitor's page may reach, its
origin remembered so that refusals reach the widget too (see `router.VisitorRoute`)."""

from typing import Annotated

from fastapi import Depends, Header, Request

from app.chatbots.dependencies import PublicBot
from app.chatbots.documents import ChatbotDocument
from app.container import ContainerDep
from app.leads.service import LeadService

# The request scope's key for the page origin the bot accepted.
ACCEPTED_ORIGIN = "botsmith.accepted_origin"


async def get_lead_service(container: ContainerDep) -> LeadService:
    return LeadService(container.resources)


LeadServiceDep = Annotated[LeadService, Depends(get_lead_service)]


async def get_visitor_bot(
    chatbot: PublicBot, request: Request, origin: Annotated[str | None, Header()] = None
) -> ChatbotDocument:
    """The public bot (`public_chatbot` has accepted the page's origin, or there is none)."""
    if origin is not None:
        request.scope[ACCEPTED_ORIGIN] = origin
    return chatbot


VisitorBot = Annotated[ChatbotDocument, Depends(get_visitor_bot)]
