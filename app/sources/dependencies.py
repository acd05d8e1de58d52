"""HTTP dependencies of the sources domain."""

from typing import Annotated

from fastapi import Depends

from app.chatbots.repository import ChatbotRepository
from app.container import ContainerDep
from app.quotas.plans import Plans
from app.retrieval.repository import ChunkRepository
from app.retrieval.segments import SegmentRepository
from app.sources.fetch import Fetcher
from app.sources.repository import SourceRepository
from app.sources.service import SourceService


async def get_source_service(container: ContainerDep) -> SourceService:
    resources = container.resources
    return SourceService(
        SourceRepository(resources.db),
        ChunkRepository(resources.db),
        SegmentRepository(resources),
        ChatbotRepository(resources),
        resources.settings,
        container.ingest_queue,
        Fetcher.configured(resources.settings),
        Plans(resources),
    )


SourceServiceDep = Annotated[SourceService, Depends(get_source_service)]
