"""The retrieval service for a request, a WebSocket chat, or the chat service."""

from typing import Annotated

from fastapi import Depends

from app.container import Container, ContainerDep
from app.retrieval.embeddings import EmbeddingsClient
from app.retrieval.repository import ChunkRepository
from app.retrieval.service import RetrievalService


def retrieval_service(container: Container) -> RetrievalService:
    resources = container.resources
    return RetrievalService(
        ChunkRepository(resources.db),
        container.retrieval_indexes,
        EmbeddingsClient.configured(resources.http, resources.settings),
    )


async def get_retrieval_service(container: ContainerDep) -> RetrievalService:
    return retrieval_service(container)


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
