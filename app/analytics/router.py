"""Analytics for a bot's owner."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.analytics.repository import AnalyticsRepository
from app.analytics.schemas import ChatbotAnalytics, Interval
from app.analytics.service import AnalyticsService
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.core.resources import ResourcesDep

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["analytics"])


async def get_analytics_service(resources: ResourcesDep) -> AnalyticsService:
    return AnalyticsService(
        AnalyticsRepository(resources.reads), resources.cache, resources.settings
    )


AnalyticsServiceDep = Annotated[AnalyticsService, Depends(get_analytics_service)]
From = Annotated[
    datetime | None,
    Query(alias="from", description="ISO 8601 with offset; default: 30 days before `to`"),
]
To = Annotated[datetime | None, Query(alias="to", description="ISO 8601 with offset; default now")]
Zone = Annotated[str, Query(alias="tz", max_length=64, description="IANA time zone of the buckets")]


@router.get("/analytics", responses=problem_responses(404, 422))
async def chatbot_analytics(
    chatbot: OwnedChatbot,
    service: AnalyticsServiceDep,
    start: From = None,
    end: To = None,
    interval: Interval = "day",
    timezone: Zone = "UTC",
) -> ChatbotAnalytics:
    """Usage and quality of the bot over a range: totals, a complete time series, the top
    questions and the questions it could not answer well. Cached for CACHE_TTL."""
    return await service.chatbot(chatbot, start, end, interval, timezone)
