"""The retrieval service for a request."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.resources import ResourcesDep
from app.retrieval.embeddings import EmbeddingsClient
from app.retrieval.service import RetrievalIndexes, RetrievalService
from app.sources.repository import SourceRepository


async def get_retrieval_service(request: Request, resources: ResourcesDep) -> RetrievalService:
    indexes: RetrievalIndexes = request.app.state.retrieval_indexes
    embeddings = EmbeddingsClient.configured(request.app.state.http, resources.settings)
    return RetrievalService(SourceRepository(resources.db), indexes, embeddings)


RetrievalServiceDep = Annotated[RetrievalService, Depends(get_retrieval_service)]
