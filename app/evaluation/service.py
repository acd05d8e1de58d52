"""Evaluation for a bot's owner: test cases (one, many, from a chat answer), queueing runs,
reading and comparing them. Executing a run is the runner's job (`app.evaluation.runner`)."""

from collections.abc import Sequence
from typing import Protocol

from pydantic import ValidationError
from redis.exceptions import RedisError

from app.chat.documents import MessageDocument
from app.chat.repository import ConversationRepository
from app.chatbots.documents import ChatbotDocument
from app.core.config import Settings
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.evaluation.documents import CaseSpecDocument, EvalCaseDocument, EvalRunDocument
from app.evaluation.errors import (
    ActiveRunLimitError,
    CaseLimitError,
    CaseNotFoundError,
    MessageNotFoundError,
    NoCasesError,
    RunNotDoneError,
    RunNotFoundError,
    UnusableMessageError,
)
from app.evaluation.repository import EvalCaseRepository, EvalRunRepository
from app.evaluation.schemas import (
    MAX_CASES,
    CaseResult,
    EvalCaseCreate,
    EvalCaseOut,
    Expectation,
    RunComparison,
    RunCreate,
    RunDetail,
    RunOut,
    RunStatus,
)
from app.evaluation.scoring import metric_changes, outcome_changes, summarize

MAX_ACTIVE_RUNS = 3  # queued or running, per bot: each case of a run may call the model
QUESTION_LIMIT = 2000  # as `schemas.Question` allows


class RunQueue(Protocol):
    """Where runs go to be executed (the ingestion queue: its stream, or this process)."""

    async def submit_evaluation(self, run_id: str) -> None: ...

    async def live_workers(self, stale_after: float) -> int | None: ...


def _spec(case: EvalCaseCreate) -> CaseSpecDocument:
    return {
        "question": case.question,
        "evidence": list(case.evidence or []),
        "expected_source_id": case.expected_source_id,
        "unanswerable": case.unanswerable,
    }


def run_out(run: EvalRunDocument, waiting: str | None = None) -> RunOut:
    """The API view; `waiting` says why a queued run is not being executed."""
    notice = waiting if run["status"] == RunStatus.QUEUED else None
    fields = {key: value for key, value in run.items() if key != "cases"}
    return RunOut.model_validate({**fields, "notice": notice})


class EvaluationService:
    def __init__(
        self,
        cases: EvalCaseRepository,
        runs: EvalRunRepository,
        conversations: ConversationRepository,
        queue: RunQueue,
        settings: Settings,
    ) -> None:
        self._cases = cases
        self._runs = runs
        self._conversations = conversations
        self._queue = queue
        self._settings = settings

    async def add_cases(
        self, chatbot: ChatbotDocument, requests: Sequence[EvalCaseCreate]
    ) -> list[EvalCaseOut]:
        """Stores all the cases or, past the bot's limit, none."""
        stored = await self._cases.count_for_chatbot(chatbot["id"])
        if stored + len(requests) > MAX_CASES:
            raise CaseLimitError(
                f"A chatbot holds at most {MAX_CASES} test cases: it has {stored}, "
                f"and {len(requests)} more would pass the limit"
            )
        now = utcnow()
        cases: list[EvalCaseDocument] = [
            {
                "id": new_id(),
                "chatbot_id": chatbot["id"],
                "created_at": now,
                **_spec(request),
            }
            for request in requests
        ]
        await self._cases.insert_many(cases)
        return [EvalCaseOut.model_validate(case) for case in cases]

    async def case_from_message(
        self, chatbot: ChatbotDocument, message_id: str, expectation: Expectation
    ) -> EvalCaseOut:
        """A case whose question is the visitor's question that a chat answer replied to (or the
        question itself, given its id)."""
        message = await self._conversations.message(chatbot["id"], message_id)
        if message is None:
            raise MessageNotFoundError()
        question: MessageDocument | None = message
        if message["role"] == "assistant":
            question = await self._conversations.question_before(message)
        if question is None:
            raise UnusableMessageError("No visitor question precedes this answer")
        try:
            request = EvalCaseCreate.model_validate(
                {**expectation.model_dump(), "question": question["content"]}
            )
        except ValidationError:
            raise UnusableMessageError(
                f"The question is not 1 to {QUESTION_LIMIT} characters long, as a test case's is"
            ) from None
        (case,) = await self.add_cases(chatbot, [request])
        return case

    async def list_cases(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[EvalCaseOut]:
        found = await self._cases.newest(chatbot["id"], cursor, limit + 1)
        return page_of(found, limit, EvalCaseOut.model_validate, "created_at")

    async def delete_case(self, chatbot: ChatbotDocument, case_id: str) -> None:
        if not await self._cases.delete(chatbot["id"], case_id):
            raise CaseNotFoundError()

    async def start_run(self, chatbot: ChatbotDocument, request: RunCreate) -> RunOut:
        """Queues a run over the given cases, or the bot's stored ones, with the bot's retrieval
        settings as they are now."""
        cases: list[CaseSpecDocument]
        if request.cases is not None:
            cases = [_spec(case) for case in request.cases]
        else:
            cases = [
                {
                    "question": case["question"],
                    "evidence": case["evidence"],
                    "expected_source_id": case["expected_source_id"],
                    "unanswerable": case["unanswerable"],
                }
                for case in await self._cases.all_for_chatbot(chatbot["id"])
            ]
        if not cases:
            raise NoCasesError("This chatbot has no test cases: add some, or send `cases`")
        if await self._runs.count_active(chatbot["id"]) >= MAX_ACTIVE_RUNS:
            raise ActiveRunLimitError(
                f"This chatbot already has {MAX_ACTIVE_RUNS} runs queued or running"
            )
        now = utcnow()
        retrieval = chatbot["retrieval"]
        run: EvalRunDocument = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "label": request.label,
            "status": RunStatus.QUEUED,
            "cases_from": "inline" if request.cases is not None else "stored",
            "cases": cases,
            "settings": {
                "top_k": retrieval["top_k"],
                "score_threshold": retrieval["score_threshold"],
                "knowledge_version": chatbot.get("knowledge_version", 0),
            },
            "progress": {"done": 0, "total": len(cases)},
            "summary": None,
            "error": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }
        await self._runs.insert(run)
        await self._queue.submit_evaluation(run["id"])
        return run_out(run, await self._waiting([run]))

    async def list_runs(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[RunOut]:
        found = await self._runs.newest(chatbot["id"], cursor, limit + 1)
        waiting = await self._waiting(found[:limit])
        return page_of(found, limit, lambda run: run_out(run, waiting), "created_at")

    async def get_run(
        self, chatbot: ChatbotDocument, run_id: str, *, with_results: bool = True
    ) -> RunDetail:
        run = await self._run(chatbot, run_id)
        results = await self._results(run_id) if with_results else None
        out = run_out(run, await self._waiting([run]))
        return RunDetail.model_validate({**out.model_dump(), "results": results})

    async def compare(self, chatbot: ChatbotDocument, base_id: str, head_id: str) -> RunComparison:
        base, head = await self._run(chatbot, base_id), await self._run(chatbot, head_id)
        for run in (base, head):
            if run["status"] != RunStatus.DONE:
                raise RunNotDoneError(f"Run {run['id']} is {run['status']}: only done runs compare")
        base_results, head_results = await self._results(base_id), await self._results(head_id)
        changed, only_in_base, only_in_head = outcome_changes(base_results, head_results)
        return RunComparison(
            base=run_out(base),
            head=run_out(head),
            metrics=metric_changes(
                summarize(base_results, base["settings"]["top_k"]),
                summarize(head_results, head["settings"]["top_k"]),
            ),
            changed=changed,
            only_in_base=only_in_base,
            only_in_head=only_in_head,
        )

    async def _run(self, chatbot: ChatbotDocument, run_id: str) -> EvalRunDocument:
        run = await self._runs.get(chatbot["id"], run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    async def _results(self, run_id: str) -> list[CaseResult]:
        return [CaseResult.model_validate(result) for result in await self._runs.results(run_id)]

    async def _waiting(self, runs: Sequence[EvalRunDocument]) -> str | None:
        """Why queued runs wait, when no ingestion worker has been seen for a while."""
        if all(run["status"] != RunStatus.QUEUED for run in runs):
            return None
        stale = self._settings.ingest_worker_stale_seconds
        try:
            live = await self._queue.live_workers(stale)
        except RedisError:
            return None  # /readyz reports Redis itself
        if live != 0:  # None: this process executes runs
            return None
        return (
            f"Waiting for a worker: none has been seen for {stale:g} s. "
            "Runs are executed by `botsmith worker`."
        )
