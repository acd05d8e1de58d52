"""Analytics for a bot's owner, and the owner's LLM token usage."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.analytics.dependencies import (
    AnalyticsServiceDep,
    From,
    ResolutionServiceDep,
    To,
    Zone,
)
from app.analytics.schemas import (
    ChatbotAnalytics,
    Interval,
    LlmUsage,
    OwnerAnswer,
    ResolvedQuestion,
)
from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.users.dependencies import CurrentUser

router = APIRouter(tags=["analytics"])
MessageId = Annotated[str, Path(max_length=64)]


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
    questions and the questions it could not answer well. Counted from hourly rollups in whole
    UTC hours: a range starting or ending inside an hour counts that whole hour. Cached for
    CACHE_TTL."""
    return await service.chatbot(chatbot, start, end, interval, timezone)


@router.post(
    "/chatbots/{chatbot_id}/analytics/unanswered/{message_id}/answer",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
)
async def answer_unanswered(
    message_id: MessageId, body: OwnerAnswer, chatbot: OwnedChatbot, service: ResolutionServiceDep
) -> ResolvedQuestion:
    """Answers an unanswered question (`message_id` from the analytics' unanswered list, or the
    question itself): a Q&A source with the question and this answer is added and ingested, so
    the bot answers it from then on, and the analytics count it in `unanswered_resolved`."""
    return await service.answer(chatbot, message_id, body)
