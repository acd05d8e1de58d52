"""Executes an evaluation run: answers each case as chat would (nothing goes into the bot's
conversations), scores it and stores the result. `botsmith worker` and, without Redis, the API's
in-process queue call it.

Idempotent, for the queue's at-least-once delivery: a run done or failed is skipped, and a run
started again replaces the results of the earlier attempt.
"""

import asyncio
import contextlib
import logging
from typing import cast

from pymongo.errors import PyMongoError

from app.chat.answering import Answerer
from app.chat.dependencies import provider_for
from app.chat.providers import ProviderError
from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import ChatbotStatus
from app.core.resources import Resources
from app.core.security import utcnow
from app.evaluation.documents import CaseResultDocument, CaseSpecDocument, RunSummaryDocument
from app.evaluation.repository import EvalRunRepository
from app.evaluation.schemas import CaseResult, Expected, RetrievedPassage, RunStatus
from app.evaluation.scoring import holds_evidence, judge, summarize
from app.retrieval.schemas import RetrievedChunk
from app.retrieval.service import RetrievalIndexes, RetrievalService

logger = logging.getLogger(__name__)
_FINISHED = (RunStatus.DONE, RunStatus.FAILED)


def _passages(hits: list[RetrievedChunk], expected: Expected) -> list[RetrievedPassage]:
    return [
        RetrievedPassage(
            chunk_id=hit.chunk_id,
            source_id=hit.source_id,
            heading=hit.heading,
            relevance=hit.relevance,
            holds_evidence=holds_evidence(hit.content, expected.evidence),
        )
        for hit in hits
    ]


class EvaluationRunner:
    def __init__(
        self, runs: EvalRunRepository, chatbots: ChatbotRepository, answerer: Answerer
    ) -> None:
        self._runs = runs
        self._chatbots = chatbots
        self._answerer = answerer

    @classmethod
    def over(cls, resources: Resources, indexes: RetrievalIndexes) -> "EvaluationRunner":
        """The runner of a process, answering with retrieval over its own `indexes`."""
        retrieval = RetrievalService.over(resources, indexes)
        answerer = Answerer(retrieval, lambda chatbot: provider_for(resources, chatbot))
        return cls(EvalRunRepository(resources.db), ChatbotRepository(resources), answerer)

    async def run(self, run_id: str, stopping: asyncio.Event | None = None) -> bool:
        """Executes the run; False when `stopping` was set before its last case (the run is
        left running, for the queue to deliver again). Raises PyMongoError when the database
        fails (the job is retried)."""
        run = await self._runs.with_cases(run_id)
        if run is None or run["status"] in _FINISHED:
            logger.info("evaluation run %s is gone or finished: skipped", run_id)
            return True
        chatbot = await self._chatbots.by_id(run["chatbot_id"])
        if chatbot is None or chatbot["status"] == ChatbotStatus.DELETING:
            await self._runs.fail(run_id, "The chatbot no longer exists", utcnow())
            return True
        settings = run["settings"]
        # The retrieval settings the run was queued with, whatever the bot says now.
        snapshot: ChatbotDocument = {
            **chatbot,
            "retrieval": {
                **chatbot["retrieval"],
                "top_k": settings["top_k"],
                "score_threshold": settings["score_threshold"],
            },
        }
        await self._runs.start(run_id, chatbot.get("knowledge_version", 0), utcnow())
        results: list[CaseResult] = []
        for position, case in enumerate(run.get("cases", [])):
            if stopping is not None and stopping.is_set():
                logger.info("evaluation run %s interrupted after %d cases", run_id, position)
                return False
            result = await self._case(snapshot, position, case)
            results.append(result)
            stored = {"run_id": run_id, "chatbot_id": chatbot["id"], **result.model_dump()}
            await self._runs.save_result(cast("CaseResultDocument", stored), utcnow())
        summary = summarize(results, settings["top_k"]).model_dump()
        await self._runs.finish(run_id, cast("RunSummaryDocument", summary), utcnow())
        logger.info("evaluation run %s done: %d cases", run_id, len(results))
        return True

    async def fail(self, run_id: str, error: str) -> None:
        await self._runs.fail(run_id, error, utcnow())

    async def run_in_process(self, run_id: str) -> None:
        """For the API's in-process queue (no Redis): nothing retries, so any error fails the
        run."""
        try:
            await self.run(run_id)
        except Exception:
            logger.exception("evaluation run %s failed unexpectedly", run_id)
            with contextlib.suppress(PyMongoError):
                await self.fail(run_id, "internal error while executing this run")

    async def _case(
        self, chatbot: ChatbotDocument, position: int, case: CaseSpecDocument
    ) -> CaseResult:
        question = case["question"]
        expected = Expected(
            evidence=case["evidence"],
            expected_source_id=case["expected_source_id"],
            unanswerable=case["unanswerable"],
        )
        try:
            answer = await self._answerer.answer(chatbot, question)
        except ProviderError as error:
            # Retrieval is still measured when the model fails.
            grounding = await self._answerer.ground(chatbot, question)
            return judge(
                position,
                question,
                expected,
                _passages(grounding.hits, expected),
                answered=False,
                answer="",
                cited_chunk_ids=[],
                confidence=grounding.confidence,
                latency_ms=None,
                error=str(error),
            )
        return judge(
            position,
            question,
            expected,
            _passages(answer.grounding.hits, expected),
            answered=answer.answered,
            answer=answer.text,
            cited_chunk_ids=[citation.chunk_id for citation in answer.citations],
            confidence=answer.grounding.confidence,
            latency_ms=answer.latency_ms,
        )
