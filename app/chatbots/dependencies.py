"""The one place that looks a chatbot up and checks that the caller owns it."""

from typing import Annotated

from fastapi import Depends, Path

from app.apikeys.repository import ApiKeyRepository
from app.apikeys.service import ApiKeyService
from app.chatbots.repository import DELETING, ChatbotRepository
from app.chatbots.service import ChatbotNotFoundError, ChatbotService
from app.core.db import Document
from app.core.resources import ResourcesDep
from app.users.dependencies import (
    ApiKeyHeaderDep,
    BearerDep,
    CurrentUser,
    current_user,
    presented_api_key,
)
from app.users.errors import AuthenticationError


async def get_chatbot_repository(resources: ResourcesDep) -> ChatbotRepository:
    return ChatbotRepository(resources.db, resources.cache, resources.reads)


ChatbotRepositoryDep = Annotated[ChatbotRepository, Depends(get_chatbot_repository)]


async def get_chatbot_service(chatbots: ChatbotRepositoryDep) -> ChatbotService:
    return ChatbotService(chatbots)


ChatbotServiceDep = Annotated[ChatbotService, Depends(get_chatbot_service)]
ChatbotId = Annotated[str, Path(max_length=64, description="The chatbot's id")]


async def owned_chatbot(
    chatbot_id: ChatbotId, user: CurrentUser, resources: ResourcesDep
) -> Document:
    """The caller's chatbot; another owner's bot is a 404, exactly like a missing one."""
    chatbots = ChatbotRepository(resources.db, resources.cache, resources.reads)
    chatbot = await chatbots.owned(user["id"], chatbot_id)
    if chatbot is None:
        raise ChatbotNotFoundError()
    return chatbot


OwnedChatbot = Annotated[Document, Depends(owned_chatbot)]


async def bot_caller(
    chatbot_id: ChatbotId, resources: ResourcesDep, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> Document:
    """For a bot's chat and retrieval: its owner (access token) or an API key of that very bot.
    Another bot's key gets 404, as another owner does."""
    chatbots = ChatbotRepository(resources.db, resources.cache, resources.reads)
    key_secret = presented_api_key(bearer, api_key)
    if key_secret is None:
        user = await current_user(resources, bearer, api_key)
        chatbot = await chatbots.owned(user["id"], chatbot_id)
    else:
        key = await ApiKeyService(ApiKeyRepository(resources.db)).authenticate(key_secret)
        if key is None:
            raise AuthenticationError("Invalid or revoked API key")
        chatbot = await chatbots.by_id(chatbot_id) if key["chatbot_id"] == chatbot_id else None
        if chatbot is not None and chatbot["status"] == DELETING:
            chatbot = None
    if chatbot is None:
        raise ChatbotNotFoundError()
    return chatbot


BotCaller = Annotated[Document, Depends(bot_caller)]
