"""HTTP dependencies of analytics: the service and the query parameters of a period."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from app.analytics.repository import AnalyticsRepository
from app.analytics.service import AnalyticsService
from app.chat.budget import TokenBudget
from app.container import ContainerDep


async def get_analytics_service(container: ContainerDep) -> AnalyticsService:
    resources = container.resources
    return AnalyticsService(
        AnalyticsRepository(resources.reads),
        resources.cache,
        resources.settings,
        TokenBudget(resources),
    )


AnalyticsServiceDep = Annotated[AnalyticsService, Depends(get_analytics_service)]
From = Annotated[
    datetime | None,
    Query(alias="from", description="ISO 8601 with offset; default: 30 days before `to`"),
]
To = Annotated[datetime | None, Query(alias="to", description="ISO 8601 with offset; default now")]
Zone = Annotated[str, Query(alias="tz", max_length=64, description="IANA time zone of the buckets")]
