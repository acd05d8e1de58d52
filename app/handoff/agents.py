"""The agents an owner invites to answer one bot's handed-off conversations: registered accounts
that may list, claim, answer and close that bot's handoffs and nothing else of the owner's."""

from app.chatbots.documents import ChatbotDocument
from app.core.errors import LimitReachedError, NotFoundError, UnprocessableError
from app.core.resources import Resources
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.handoff.documents import AgentDocument
from app.handoff.repository import AgentRepository
from app.handoff.schemas import AgentInvite, AgentOut
from app.users.repository import UserRepository


class AgentNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such agent on this chatbot")


class UnknownAccountError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("No account has this email; the agent must sign up first")


class OwnerNotAgentError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("The bot's owner works its handoffs already")


class AgentService:
    def __init__(self, resources: Resources) -> None:
        self._agents = AgentRepository(resources.db)
        self._users = UserRepository(resources)
        self._max = resources.settings.max_agents_per_chatbot

    async def invite(self, chatbot: ChatbotDocument, invite: AgentInvite) -> AgentOut:
        user = await self._users.by_email(invite.email)
        if user is None:
            raise UnknownAccountError()
        if user["id"] == chatbot["user_id"]:
            raise OwnerNotAgentError()
        agent: AgentDocument = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "owner_id": chatbot["user_id"],
            "user_id": user["id"],
            "email": user["email"],
            "display_name": invite.display_name,
            "created_at": utcnow(),
        }
        # Insert, then count (as for chatbots): concurrent invitations never pass the cap.
        await self._agents.insert(agent)
        if await self._agents.count(chatbot["id"]) > self._max:
            await self._agents.remove_unused(agent["id"])
            raise LimitReachedError(
                f"A chatbot may have at most {self._max} agents (MAX_AGENTS_PER_CHATBOT)"
            )
        return AgentOut.model_validate(agent)

    async def list(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[AgentOut]:
        found = await self._agents.list_for_chatbot(chatbot["id"], cursor, limit + 1)
        return page_of(found, limit, AgentOut.model_validate, "created_at")

    async def remove(self, chatbot: ChatbotDocument, agent_id: str) -> None:
        if not await self._agents.delete(chatbot["id"], agent_id):
            raise AgentNotFoundError()
