"""A chatbot's evaluation, for its owner: test cases, runs, and the comparison of two runs."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.evaluation.dependencies import EvaluationServiceDep
from app.evaluation.schemas import (
    EvalCaseBatch,
    EvalCaseCreate,
    EvalCaseOut,
    Expectation,
    RunComparison,
    RunCreate,
    RunDetail,
    RunOut,
)

router = APIRouter(
    prefix="/chatbots/{chatbot_id}/eval",
    tags=["evaluation"],
    responses=problem_responses(401, 404),
)
ItemId = Annotated[str, Path(max_length=64)]
RunId = Annotated[str, Query(min_length=1, max_length=64)]


@router.post("/cases", status_code=status.HTTP_201_CREATED, responses=problem_responses(409, 422))
async def add_case(
    body: EvalCaseCreate, chatbot: OwnedChatbot, service: EvaluationServiceDep
) -> EvalCaseOut:
    """A question with what a correct answer rests on: `evidence` phrases and/or an
    `expected_source_id`, or `unanswerable: true`. A bot holds up to 1,000 cases (409 past it)."""
    (case,) = await service.add_cases(chatbot, [body])
    return case


@router.post(
    "/cases/batch", status_code=status.HTTP_201_CREATED, responses=problem_responses(409, 422)
)
async def add_cases(
    body: EvalCaseBatch, chatbot: OwnedChatbot, service: EvaluationServiceDep
) -> list[EvalCaseOut]:
    """A JSON list of cases, stored all or none: one invalid case (422) or the limit (409)
    stores nothing."""
    return await service.add_cases(chatbot, body)


@router.post(
    "/cases/from-message/{message_id}",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def add_case_from_message(
    message_id: ItemId, body: Expectation, chatbot: OwnedChatbot, service: EvaluationServiceDep
) -> EvalCaseOut:
    """The visitor question a chat answer replied to (such as an unanswered question from the
    analytics) becomes a case; the body says what is correct, as for any case: `evidence`
    and/or `expected_source_id`, or `unanswerable: true`."""
    return await service.case_from_message(chatbot, message_id, body)


@router.get("/cases")
async def list_cases(
    chatbot: OwnedChatbot, service: EvaluationServiceDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[EvalCaseOut]:
    """The bot's test cases, newest first."""
    return await service.list_cases(chatbot, cursor, limit)


@router.delete("/cases/{case_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_case(
    case_id: ItemId, chatbot: OwnedChatbot, service: EvaluationServiceDep
) -> None:
    await service.delete_case(chatbot, case_id)


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, responses=problem_responses(409, 422))
async def start_run(
    chatbot: OwnedChatbot, service: EvaluationServiceDep, body: RunCreate | None = None
) -> RunOut:
    """Queues a run over the stored cases, or over `cases` sent with it (up to 1,000), with the
    bot's retrieval settings as they are now; the ingestion worker executes it
    (`status` queued → running → done or failed, `progress` counts the cases done)."""
    return await service.start_run(chatbot, body or RunCreate())


@router.get("/runs")
async def list_runs(
    chatbot: OwnedChatbot, service: EvaluationServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> Page[RunOut]:
    """The bot's runs with their summaries, newest first."""
    return await service.list_runs(chatbot, cursor, limit)


@router.get("/runs/compare", responses=problem_responses(409, 422))
async def compare_runs(
    base: RunId, head: RunId, chatbot: OwnedChatbot, service: EvaluationServiceDep
) -> RunComparison:
    """Two done runs: every summary metric of both with head - base, and the cases (matched by
    question) whose hit or answered outcome changed."""
    return await service.compare(chatbot, base, head)


@router.get("/runs/{run_id}")
async def get_run(
    run_id: ItemId,
    chatbot: OwnedChatbot,
    service: EvaluationServiceDep,
    results: Annotated[bool, Query(description="false: without the per-case results")] = True,
) -> RunDetail:
    """A run's summary and its per-case results, in the order of its cases."""
    return await service.get_run(chatbot, run_id, with_results=results)
