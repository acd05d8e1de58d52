"""Retrieval test for owners (and the bot's API keys): which chunks a question finds."""

from fastapi import APIRouter

from app.chatbots.dependencies import BotCaller
from app.core.errors import problem_responses
from app.retrieval.dependencies import RetrievalServiceDep
from app.retrieval.schemas import RetrieveRequest, RetrieveResponse

router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["retrieval"])


@router.post("/retrieve", responses=problem_responses(401, 404, 422))
async def retrieve(
    body: RetrieveRequest, chatbot: BotCaller, service: RetrievalServiceDep
) -> RetrieveResponse:
    """The top chunks for a query, with their scores. Works before any chat is set up."""
    results = await service.retrieve(chatbot, body.query, body.top_k)
    threshold = chatbot["retrieval"]["score_threshold"]
    return RetrieveResponse(
        results=results, above_threshold=any(r.relevance >= threshold for r in results)
    )
