"""HTTP dependencies of the handoff domain: its services, the handoff desk a caller may work
(the rule is in `app.handoff.access`), and who asks for a handoff through the owner's API."""

from typing import Annotated

from fastapi import Depends

from app.chatbots.dependencies import ChatbotId
from app.container import ContainerDep
from app.handoff.access import Desk, handoff_desk
from app.handoff.agents import AgentService
from app.handoff.schemas import Requester
from app.handoff.service import HandoffService
from app.users.access import presented_api_key
from app.users.dependencies import ApiKeyHeaderDep, BearerDep, CurrentUser, bearer_token


async def get_handoff_service(container: ContainerDep) -> HandoffService:
    return HandoffService(container.resources)


async def get_agent_service(container: ContainerDep) -> AgentService:
    return AgentService(container.resources)


async def get_desk(chatbot_id: ChatbotId, user: CurrentUser, container: ContainerDep) -> Desk:
    return await handoff_desk(container.resources, user, chatbot_id)


async def get_requester(bearer: BearerDep, api_key: ApiKeyHeaderDep) -> Requester:
    """Whether the owner's API call came with an API key or the owner's own token."""
    if presented_api_key(bearer_token(bearer), api_key) is not None:
        return Requester.API_KEY
    return Requester.OWNER


HandoffServiceDep = Annotated[HandoffService, Depends(get_handoff_service)]
AgentServiceDep = Annotated[AgentService, Depends(get_agent_service)]
HandoffDesk = Annotated[Desk, Depends(get_desk)]
RequesterDep = Annotated[Requester, Depends(get_requester)]
