"""Which chatbot a caller may use: the rules every transport (HTTP dependencies, the WebSocket)
applies. Another owner's bot, another bot's key and a bot being deleted all look missing."""

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus, Visibility
from app.chatbots.service import ChatbotNotFoundError
from app.core.resources import Resources
from app.users.documents import ApiKeyDocument
from app.users.errors import ForbiddenError


class OriginNotAllowedError(ForbiddenError):
    def __init__(self, origin: str) -> None:
        super().__init__(f"This chatbot does not accept requests from {origin}")


async def owned_chatbot(resources: Resources, user_id: str, chatbot_id: str) -> ChatbotDocument:
    """The owner's chatbot; another owner's bot is a 404, exactly like a missing one."""
    chatbot = await ChatbotRepository(resources).owned(user_id, chatbot_id)
    if chatbot is None:
        raise ChatbotNotFoundError()
    return chatbot


async def chatbot_for_key(
    resources: Resources, key: ApiKeyDocument, chatbot_id: str
) -> ChatbotDocument:
    """The bot an API key belongs to, when that is the bot asked for."""
    chatbot = (
        await ChatbotRepository(resources).by_id(chatbot_id)
        if key["chatbot_id"] == chatbot_id
        else None
    )
    if chatbot is None or chatbot["status"] == ChatbotStatus.DELETING:
        raise ChatbotNotFoundError()
    return chatbot


async def public_chatbot(
    resources: Resources, chatbot_id: str, origin: str | None
) -> ChatbotDocument:
    """A public, active bot for a visitor; a browser page from an origin the bot does not allow
    is refused (403)."""
    chatbot = await ChatbotRepository(resources).by_id(chatbot_id)
    if (
        chatbot is None
        or chatbot["visibility"] != Visibility.PUBLIC
        or chatbot["status"] != ChatbotStatus.ACTIVE
    ):
        raise ChatbotNotFoundError()
    if origin is not None and origin not in chatbot["allowed_origins"]:
        raise OriginNotAllowedError(origin)
    return chatbot
