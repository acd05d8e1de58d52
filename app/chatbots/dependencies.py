"""HTTP dependencies of the chatbots domain: the chatbot service, and the chatbot a caller may
use (the rules are in `app.chatbots.access`)."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Header, Path, Request

from app.chatbots.access import chatbot_for_key, owned_chatbot, public_chatbot
from app.chatbots.documents import ChatbotDocument
from app.chatbots.service import ChatbotService
from app.container import ContainerDep
from app.users.access import api_key_for_secret, presented_api_key, user_for_access_token
from app.users.dependencies import ApiKeyHeaderDep, BearerDep, CurrentUser, bearer_token
from app.users.errors import AuthenticationError


async def get_chatbot_service(container: ContainerDep) -> ChatbotService:
    return ChatbotService.of(container.resources)


ChatbotServiceDep = Annotated[ChatbotService, Depends(get_chatbot_service)]
ChatbotId = Annotated[str, Path(max_length=64, description="The chatbot's id")]


async def get_owned_chatbot(
    chatbot_id: ChatbotId, user: CurrentUser, container: ContainerDep
) -> ChatbotDocument:
    return await owned_chatbot(container.resources, user["id"], chatbot_id)


OwnedChatbot = Annotated[ChatbotDocument, Depends(get_owned_chatbot)]


async def get_bot_for_caller(
    chatbot_id: ChatbotId, container: ContainerDep, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> ChatbotDocument:
    """For a bot's chat and retrieval: its owner (access token) or an API key of that very bot.
    Another bot's key gets 404, as another owner does."""
    resources = container.resources
    token = bearer_token(bearer)
    key_secret = presented_api_key(token, api_key)
    if key_secret is not None:
        key = await api_key_for_secret(resources, key_secret)
        return await chatbot_for_key(resources, key, chatbot_id)
    if token is None:
        raise AuthenticationError()
    user = await user_for_access_token(resources, token)
    return await owned_chatbot(resources, user["id"], chatbot_id)


BotCaller = Annotated[ChatbotDocument, Depends(get_bot_for_caller)]


async def get_public_chatbot(
    chatbot_id: ChatbotId,
    container: ContainerDep,
    request: Request,
    origin: Annotated[str | None, Header()] = None,
) -> ChatbotDocument:
    # The hosted chat page (/chat/{id}) is served by this API: its own origin is not a
    # cross-origin embed and needs no allow-listing.
    if origin is not None and urlsplit(origin).netloc == request.headers.get("host"):
        origin = None
    return await public_chatbot(container.resources, chatbot_id, origin)


PublicBot = Annotated[ChatbotDocument, Depends(get_public_chatbot)]
