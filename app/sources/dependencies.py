"""Building the ingestion service for a request, or for the worker."""

from typing import Annotated

import httpx
from fastapi import Depends, Request

from app.chatbots.repository import ChatbotRepository
from app.core.resources import Resources, ResourcesDep
from app.retrieval.embeddings import EmbeddingsClient
from app.sources.queue import IngestQueue
from app.sources.repository import SourceRepository
from app.sources.service import IngestionService


def ingestion_service(
    resources: Resources, http: httpx.AsyncClient, queue: IngestQueue | None
) -> IngestionService:
    return IngestionService(
        SourceRepository(resources.db),
        ChatbotRepository(resources.db, resources.cache, resources.reads),
        resources.settings,
        resources.events,
        http,
        queue,
        EmbeddingsClient.configured(http, resources.settings),
    )


async def get_ingestion_service(request: Request, resources: ResourcesDep) -> IngestionService:
    queue: IngestQueue = request.app.state.ingest_queue
    return ingestion_service(resources, request.app.state.http, queue)


IngestionServiceDep = Annotated[IngestionService, Depends(get_ingestion_service)]
