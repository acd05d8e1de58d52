"""The only code that touches the evaluation collections: eval_cases, eval_runs and
eval_results (a chatbot's deletion purges them, `ChatbotRepository.purge`)."""

from datetime import datetime
from typing import Any, cast

from app.core.db import Document, MongoDatabase
from app.core.schemas import after_cursor
from app.evaluation.documents import (
    CaseResultDocument,
    EvalCaseDocument,
    EvalRunDocument,
    RunSummaryDocument,
)
from app.evaluation.schemas import RunStatus

_NEWEST = [("created_at", -1), ("id", -1)]
_NO_CASES = {"_id": 0, "cases": 0}
_ACTIVE = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]


class EvalCaseRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._cases = db["eval_cases"]

    async def insert_many(self, cases: list[EvalCaseDocument]) -> None:
        await self._cases.insert_many(cast("list[Document]", cases))

    async def count_for_chatbot(self, chatbot_id: str) -> int:
        return await self._cases.count_documents({"chatbot_id": chatbot_id})

    async def newest(
        self, chatbot_id: str, cursor: str | None, limit: int
    ) -> list[EvalCaseDocument]:
        query: dict[str, Any] = {"chatbot_id": chatbot_id, **after_cursor(cursor)}
        found = self._cases.find(query, {"_id": 0}).sort(_NEWEST).limit(limit)
        return cast("list[EvalCaseDocument]", await found.to_list())

    async def all_for_chatbot(self, chatbot_id: str) -> list[EvalCaseDocument]:
        """Every case of the bot, oldest first (the order a run answers them in)."""
        found = self._cases.find({"chatbot_id": chatbot_id}, {"_id": 0})
        oldest = await found.sort([("created_at", 1), ("id", 1)]).to_list()
        return cast("list[EvalCaseDocument]", oldest)

    async def delete(self, chatbot_id: str, case_id: str) -> bool:
        result = await self._cases.delete_one({"id": case_id, "chatbot_id": chatbot_id})
        return result.deleted_count == 1


class EvalRunRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._runs = db["eval_runs"]
        self._results = db["eval_results"]

    async def insert(self, run: EvalRunDocument) -> None:
        await self._runs.insert_one(cast("Document", run))

    async def get(self, chatbot_id: str, run_id: str) -> EvalRunDocument | None:
        found = await self._runs.find_one({"id": run_id, "chatbot_id": chatbot_id}, _NO_CASES)
        return cast("EvalRunDocument | None", found)

    async def with_cases(self, run_id: str) -> EvalRunDocument | None:
        found = await self._runs.find_one({"id": run_id}, {"_id": 0})
        return cast("EvalRunDocument | None", found)

    async def newest(
        self, chatbot_id: str, cursor: str | None, limit: int
    ) -> list[EvalRunDocument]:
        query: dict[str, Any] = {"chatbot_id": chatbot_id, **after_cursor(cursor)}
        found = self._runs.find(query, _NO_CASES).sort(_NEWEST).limit(limit)
        return cast("list[EvalRunDocument]", await found.to_list())

    async def count_active(self, chatbot_id: str) -> int:
        return await self._runs.count_documents(
            {"chatbot_id": chatbot_id, "status": {"$in": _ACTIVE}}
        )

    async def start(self, run_id: str, knowledge_version: int, now: datetime) -> None:
        """Marks the run running from its first case; results of an earlier attempt go."""
        await self._results.delete_many({"run_id": run_id})
        await self._runs.update_one(
            {"id": run_id},
            {
                "$set": {
                    "status": RunStatus.RUNNING.value,
                    "settings.knowledge_version": knowledge_version,
                    "progress.done": 0,
                    "summary": None,
                    "error": None,
                    "started_at": now,
                    "finished_at": None,
                    "updated_at": now,
                }
            },
        )

    async def save_result(self, result: CaseResultDocument, now: datetime) -> None:
        """Stores one case's result (again: it replaces the earlier one) and the progress."""
        await self._results.update_one(
            {"run_id": result["run_id"], "position": result["position"]},
            {"$set": result},
            upsert=True,
        )
        await self._runs.update_one(
            {"id": result["run_id"]},
            {"$set": {"progress.done": result["position"] + 1, "updated_at": now}},
        )

    async def finish(self, run_id: str, summary: RunSummaryDocument, now: datetime) -> None:
        await self._runs.update_one(
            {"id": run_id},
            {
                "$set": {
                    "status": RunStatus.DONE.value,
                    "summary": summary,
                    "finished_at": now,
                    "updated_at": now,
                }
            },
        )

    async def fail(self, run_id: str, error: str, now: datetime) -> None:
        await self._runs.update_one(
            {"id": run_id},
            {
                "$set": {
                    "status": RunStatus.FAILED.value,
                    "error": error,
                    "finished_at": now,
                    "updated_at": now,
                }
            },
        )

    async def results(self, run_id: str) -> list[CaseResultDocument]:
        found = self._results.find({"run_id": run_id}, {"_id": 0}).sort("position", 1)
        return cast("list[CaseResultDocument]", await found.to_list())
