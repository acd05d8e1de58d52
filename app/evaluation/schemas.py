"""Evaluation: request and response models of test cases, runs and their comparison."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from app.core.schemas import RequestModel

MAX_CASES = 1000  # stored cases per bot, and cases per run

Question = Annotated[str, Field(min_length=1, max_length=2000)]
Phrase = Annotated[str, Field(min_length=1, max_length=500)]


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


CaseOrigin = Literal["stored", "inline"]


class Expectation(RequestModel):
    """What a correct answer looks like: passages holding an evidence phrase and/or coming from
    a source, or no answer at all (`unanswerable`)."""

    evidence: Annotated[list[Phrase], Field(min_length=1, max_length=10)] | None = Field(
        default=None,
        description="A correct passage contains at least one phrase (case and spacing ignored)",
    )
    expected_source_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="A passage from this source is correct"
    )
    unanswerable: bool = Field(
        default=False, description="The knowledge does not answer it: the bot should say so"
    )

    @model_validator(mode="after")
    def _says_what_is_correct(self) -> Self:
        if self.unanswerable and (self.evidence or self.expected_source_id):
            raise ValueError("an unanswerable case has no evidence and no expected_source_id")
        if not self.unanswerable and not self.evidence and not self.expected_source_id:
            raise ValueError("give evidence, an expected_source_id, or unanswerable: true")
        return self


class EvalCaseCreate(Expectation):
    question: Question


EvalCaseBatch = Annotated[list[EvalCaseCreate], Field(min_length=1, max_length=MAX_CASES)]


class Expected(BaseModel):
    evidence: list[str] = Field(default_factory=list)
    expected_source_id: str | None = None
    unanswerable: bool = False


class EvalCaseOut(Expected):
    id: str
    chatbot_id: str
    question: str
    created_at: datetime


class RunCreate(RequestModel):
    cases: EvalCaseBatch | None = Field(
        default=None, description="Cases for this run only; without them, the bot's stored cases"
    )
    label: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="A name for the run, such as a commit or a setting tried"
    )


class RetrievedPassage(BaseModel):
    chunk_id: str
    source_id: str
    heading: str
    relevance: float
    holds_evidence: bool = Field(description="The passage contains an evidence phrase")


class CaseResult(BaseModel):
    position: int = Field(description="The case's place in the run, from 0")
    question: str
    expected: Expected
    retrieved: list[RetrievedPassage] = Field(description="The top-k passages, best first")
    hit: bool | None = Field(
        description="A retrieved passage is correct; null for unanswerable cases"
    )
    rank: int | None = Field(description="The rank of the first correct passage, from 1")
    answered: bool
    answer: str
    cited_chunk_ids: list[str]
    citation_correct: bool | None = Field(
        description="A cited passage is correct; null unless an answerable case was answered"
    )
    evidence_in_answer: bool | None = Field(
        description="The answer contains an evidence phrase; null without evidence phrases"
    )
    confidence: float = Field(description="The best passage's relevance")
    latency_ms: int | None = None
    error: str | None = Field(default=None, description="Why the model gave no answer")


class RunSummary(BaseModel):
    cases: int
    answerable: int
    unanswerable: int
    errors: int = Field(description="Cases whose model call failed")
    k: int = Field(description="The bot's top_k when the run was queued")
    recall_at_k: float | None = Field(description="Answerable cases with a correct top-k passage")
    mrr: float | None = Field(description="Mean of 1/rank of the first correct passage (0: none)")
    answered_rate: float | None = Field(description="Answerable cases the bot answered")
    idk_rate: float | None = Field(description="Unanswerable cases the bot said it cannot answer")
    citation_accuracy: float | None = Field(
        description="Answered answerable cases citing a correct passage"
    )
    evidence_in_answer_rate: float | None = Field(
        description="Answerable cases with evidence whose answer contains a phrase"
    )
    p95_latency_ms: int | None = Field(description="Nearest-rank 95th percentile")


class RunSettings(BaseModel):
    top_k: int
    score_threshold: float
    knowledge_version: int


class RunProgress(BaseModel):
    done: int
    total: int


class RunOut(BaseModel):
    id: str
    chatbot_id: str
    label: str | None
    status: RunStatus
    cases_from: CaseOrigin
    settings: RunSettings
    progress: RunProgress
    summary: RunSummary | None
    error: str | None
    notice: str | None = Field(
        default=None, description="Why a queued run is not being executed (no worker)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetail(RunOut):
    results: list[CaseResult] | None = Field(description="Null when asked without results")


class MetricChange(BaseModel):
    metric: str
    base: float | None
    head: float | None
    delta: float | None = Field(description="head - base; null when either is")


class OutcomeChange(BaseModel):
    question: str
    base_hit: bool | None
    head_hit: bool | None
    base_answered: bool
    head_answered: bool


class RunComparison(BaseModel):
    base: RunOut
    head: RunOut
    metrics: list[MetricChange]
    changed: list[OutcomeChange] = Field(
        description="Cases (matched by question) whose hit or answered outcome differs"
    )
    only_in_base: list[str]
    only_in_head: list[str]
