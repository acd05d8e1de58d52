"""HTTP dependencies of analytics: the services and the query parameters of a period."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from app.analytics.repository import AnalyticsRepository, RollupRepository
from app.analytics.resolutions import ResolutionService
from app.analytics.service import AnalyticsService
from app.chat.activity import ChatActivity
from app.chat.budget import TokenBudget
from app.chat.repository import ConversationRepository
from app.container import ContainerDep
from app.sources.dependencies import get_source_service


async def get_analytics_service(container: ContainerDep) -> AnalyticsService:
    resources = container.resources
    return AnalyticsService(
        AnalyticsRepository(resources.reads),
        resources.cache,
        resources.settings,
        TokenBudget(resources),
    )


async def get_resolution_service(container: ContainerDep) -> ResolutionService:
    resources = container.resources
    return ResolutionService(
        RollupRepository(resources.db),
        ConversationRepository(resources.db, resources.reads),
        await get_source_service(container),
        ChatActivity(resources.db),
    )


AnalyticsServiceDep = Annotated[AnalyticsService, Depends(get_analytics_service)]
ResolutionServiceDep = Annotated[ResolutionService, Depends(get_resolution_service)]
From = Annotated[
    datetime | None,
    Query(alias="from", description="ISO 8601 with offset; default: 30 days before `to`"),
]
To = Annotated[datetime | None, Query(alias="to", description="ISO 8601 with offset; default now")]
Zone = Annotated[str, Query(alias="tz", max_length=64, description="IANA time zone of the buckets")]
