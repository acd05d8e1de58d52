"""Analytics for a bot's owner, and the owner's LLM token usage."""

from fastapi import APIRouter

from app.analytics.dependencies import AnalyticsServiceDep, From, To, Zone
from app.analytics.schemas import ChatbotAnalytics, Interval, LlmUsage
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.users.dependencies import CurrentUser

router = APIRouter(tags=["analytics"])


@router.get("/analytics/usage", responses=problem_responses(401))
async def llm_usage(user: CurrentUser, service: AnalyticsServiceDep) -> LlmUsage:
    """The LLM tokens the caller's bots spent this UTC day and month, and the limits; chat with
    the platform's LLM answers 429 once a limit is reached."""
    return await service.llm_usage(user["id"])


@router.get("/chatbots/{chatbot_id}/analytics", responses=problem_responses(404, 422))
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
