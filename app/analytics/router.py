"""Analytics for a bot's owner."""

from fastapi import APIRouter

from app.analytics.dependencies import AnalyticsServiceDep, From, To, Zone
from app.analytics.schemas import ChatbotAnalytics, Interval
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["analytics"])


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
