"""HTTP dependencies of the chat domain, the one builder of the chat service (the HTTP routes and
the WebSocket both use it), and the choice of a bot's answer provider (chat and evaluation runs
both use it)."""

from typing import Annotated

from fastapi import Depends

from app.chat.answering import Answerer
from app.chat.providers import AnswerProvider, OfflineProvider, OpenAICompatibleProvider
from app.chat.repository import ConversationRepository
from app.chat.service import ChatService, ConversationService
from app.chat.spend import MeteredProvider, SpendControls, uses_platform_llm
from app.chatbots.documents import ChatbotDocument
from app.container import Container, ContainerDep
from app.core.resources import Resources
from app.handoff.service import HandoffService
from app.retrieval.dependencies import retrieval_service


def provider_for(resources: Resources, chatbot: ChatbotDocument) -> AnswerProvider:
    """The bot's model, metered, when it asks for one and LLM_BASE_URL is set, else the offline
    one."""
    settings = resources.settings
    base_url = settings.llm_base_url
    if base_url is None or not uses_platform_llm(settings, chatbot):
        return OfflineProvider()
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None

    def open_provider(model: str) -> OpenAICompatibleProvider:
        return OpenAICompatibleProvider(
            resources.http,
            str(base_url),
            key,
            model,
            chatbot["model"]["temperature"],
            settings.llm_timeout_seconds,
        )

    return MeteredProvider(SpendControls(resources), chatbot, open_provider)


def chat_service(container: Container) -> ChatService:
    resources = container.resources
    conversations = ConversationRepository(resources.db, resources.reads)
    answerer = Answerer(
        retrieval_service(container), lambda chatbot: provider_for(resources, chatbot)
    )
    return ChatService(
        conversations,
        answerer,
        resources.events,
        SpendControls(resources),
        HandoffService(resources),
        resources,
    )


async def get_chat_service(container: ContainerDep) -> ChatService:
    return chat_service(container)


async def get_conversation_service(container: ContainerDep) -> ConversationService:
    resources = container.resources
    conversations = ConversationRepository(resources.db, resources.reads)
    return ConversationService(conversations, resources.events, resources)


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]
ConversationServiceDep = Annotated[ConversationService, Depends(get_conversation_service)]
