"""Who may work a bot's handoffs: its owner, and the agents the owner invited to that bot. The
rule the HTTP dependencies and the WebSocket both apply; anyone else (and an agent on any other
endpoint of the owner's) sees a 404, as for a missing bot."""

from dataclasses import dataclass

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus
from app.chatbots.service import ChatbotNotFoundError
from app.core.resources import Resources
from app.handoff.repository import AgentRepository, HandoffRepository
from app.users.documents import UserDocument


@dataclass(frozen=True, slots=True)
class Operator:
    """The person working a handoff: the owner or an invited agent, with the name visitors see."""

    user_id: str
    display_name: str
    is_owner: bool


@dataclass(frozen=True, slots=True)
class Desk:
    chatbot: ChatbotDocument
    operator: Operator


def owner_display_name(user: UserDocument) -> str:
    return user["name"] or user["email"].split("@", 1)[0]


async def handoff_desk(resources: Resources, user: UserDocument, chatbot_id: str) -> Desk:
    """The bot's handoff desk for this user, if they own the bot or are one of its agents."""
    chatbot = await ChatbotRepository(resources).by_id(chatbot_id)
    if chatbot is None or chatbot["status"] == ChatbotStatus.DELETING:
        raise ChatbotNotFoundError()
    if chatbot["user_id"] == user["id"]:
        return Desk(chatbot, Operator(user["id"], owner_display_name(user), is_owner=True))
    agent = await AgentRepository(resources.db).of_user(chatbot_id, user["id"])
    if agent is None:
        raise ChatbotNotFoundError()
    return Desk(chatbot, Operator(user["id"], agent["display_name"], is_owner=False))


async def visitor_owns_conversation(
    resources: Resources, chatbot_id: str, session_id: str, conversation_id: str
) -> bool:
    """Whether the conversation is this visitor session's own (what the visitor socket may
    follow); another visitor's looks missing."""
    conversation = await HandoffRepository(resources.db).conversation(chatbot_id, conversation_id)
    return conversation is not None and conversation["session_id"] == session_id
