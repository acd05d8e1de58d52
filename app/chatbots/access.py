"""Which chatbot a caller may use: the rules every transport (HTTP dependencies, the WebSocket)
applies. Another owner's bot, another bot's key and a bot being deleted all look missing; a
suspended owner's bots serve neither API keys nor visitors."""

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus, Visibility
from app.chatbots.service import ChatbotNotFoundError
from app.core.resources import Resources
from app.users.documents import ApiKeyDocument
from app.users.errors import ForbiddenError
from app.users.repository import UserRepository
from app.users.schemas import UserStatus


class OriginNotAllowedError(ForbiddenError):
    def __init__(self, origin: str) -> None:
        super().__init__(f"This chatbot does not accept requests from {origin}")


class OwnerSuspendedError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("This chatbot's owner account is suspended; its API keys do not answer")


async def _owner_is_active(resources: Resources, chatbot: ChatbotDocument) -> bool:
    """Read through the user cache, which every change of a user's status invalidates."""
    owner = await UserRepository(resources).by_id(chatbot["user_id"])
    return owner is not None and owner["status"] == UserStatus.ACTIVE


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
    if not await _owner_is_active(resources, chatbot):
        raise OwnerSuspendedError()
    return chatbot


async def public_chatbot(
    resources: Resources, chatbot_id: str, origin: str | None
) -> ChatbotDocument:
    """A public, active bot of an active owner for a visitor (anything else looks missing, so a
    visitor learns nothing about the account); a browser page from an origin the bot does not
    allow is refused (403)."""
    chatbot = await ChatbotRepository(resources).by_id(chatbot_id)
    if (
        chatbot is None
        or chatbot["visibility"] != Visibility.PUBLIC
        or chatbot["status"] != ChatbotStatus.ACTIVE
        or not await _owner_is_active(resources, chatbot)
    ):
        raise ChatbotNotFoundError()
    if origin is not None and origin not in chatbot["allowed_origins"]:
        raise OriginNotAllowedError(origin)
    return chatbot
