"""HTTP dependencies of the chat domain, and the one builder of the chat service (the HTTP
routes and the WebSocket both use it)."""

from typing import Annotated

from fastapi import Depends

from app.chat.providers import AnswerProvider, OfflineProvider, OpenAICompatibleProvider
from app.chat.repository import ConversationRepository
from app.chat.service import ChatService, ConversationService
from app.chatbots.documents import ChatbotDocument
from app.container import Container, ContainerDep
from app.retrieval.dependencies import retrieval_service


def chat_service(container: Container) -> ChatService:
    resources = container.resources
    settings = resources.settings

    def provider_for(chatbot: ChatbotDocument) -> AnswerProvider:
        model = chatbot["model"]
        if model["provider"] != "openai" or settings.llm_base_url is None:
            return OfflineProvider()
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAICompatibleProvider(
            resources.http,
            str(settings.llm_base_url),
            key,
            model["model"] or settings.llm_model,
            model["temperature"],
            settings.llm_timeout_seconds,
        )

    conversations = ConversationRepository(resources.db, resources.reads)
    return ChatService(conversations, retrieval_service(container), provider_for, resources.events)


async def get_chat_service(container: ContainerDep) -> ChatService:
    return chat_service(container)


async def get_conversation_service(container: ContainerDep) -> ConversationService:
    resources = container.resources
    conversations = ConversationRepository(resources.db, resources.reads)
    return ConversationService(conversations, resources.events)


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
