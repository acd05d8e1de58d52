"""The one place that looks a chatbot up and checks that the caller owns it."""

from typing import Annotated

from fastapi import Depends, Path

from app.chatbots.repository import ChatbotRepository
from app.chatbots.service import ChatbotNotFoundError, ChatbotService
from app.core.db import Document
from app.core.resources import ResourcesDep
from app.users.dependencies import CurrentUser


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
