"""The retrieval service for a request, a WebSocket chat, or the chat service."""

from typing import Annotated

from fastapi import Depends

from app.container import Container, ContainerDep
from app.retrieval.service import RetrievalService


def retrieval_service(container: Container) -> RetrievalService:
    return RetrievalService.over(container.resources, container.retrieval_indexes)


async def get_retrieval_service(container: ContainerDep) -> RetrievalService:
    return retrieval_service(container)


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
