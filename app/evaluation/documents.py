"""What evaluation stores: a bot's test cases, its runs, and each run's per-case results."""

from datetime import datetime
from typing import NotRequired, TypedDict

from app.evaluation.schemas import CaseOrigin, RunStatus


class CaseSpecDocument(TypedDict):
    """A case as a run snapshots it."""

    question: str
    evidence: list[str]
    expected_source_id: str | None
    unanswerable: bool


class EvalCaseDocument(CaseSpecDocument):
    id: str
    chatbot_id: str
    created_at: datetime


class RunSettingsDocument(TypedDict):
    top_k: int
    score_threshold: float
    knowledge_version: int  # when queued; the worker records the one it answered from


class RunProgressDocument(TypedDict):
    done: int
    total: int


class RunSummaryDocument(TypedDict):
    cases: int
    answerable: int
    unanswerable: int
    errors: int
    k: int
    recall_at_k: float | None
    mrr: float | None
    answered_rate: float | None
    idk_rate: float | None
    citation_accuracy: float | None
    evidence_in_answer_rate: float | None
    p95_latency_ms: int | None


class EvalRunDocument(TypedDict):
    id: str
    chatbot_id: str
    user_id: str
    label: str | None
    status: RunStatus
    cases_from: CaseOrigin
    cases: NotRequired[list[CaseSpecDocument]]  # listings project it out
    settings: RunSettingsDocument
    progress: RunProgressDocument
    summary: RunSummaryDocument | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ExpectedDocument(TypedDict):
    evidence: list[str]
    expected_source_id: str | None
    unanswerable: bool


class RetrievedPassageDocument(TypedDict):
    chunk_id: str
    source_id: str
    heading: str
    relevance: float
    holds_evidence: bool


class CaseResultDocument(TypedDict):
    """One case of one run (`CaseResult`), keyed by run and position."""

    run_id: str
    chatbot_id: str
    position: int
    question: str
    expected: ExpectedDocument
    retrieved: list[RetrievedPassageDocument]
    hit: bool | None
    rank: int | None
    answered: bool
    answer: str
    cited_chunk_ids: list[str]
    citation_correct: bool | None
    evidence_in_answer: bool | None
    confidence: float
    latency_ms: int | None
    error: str | None
