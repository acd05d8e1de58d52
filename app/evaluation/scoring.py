"""How a run is scored, defined once: a correct passage, a hit, its rank, a correct citation, and
a run's summary. Pure functions shared by the worker, the comparison of runs and the CLI."""

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence

from app.evaluation.schemas import (
    CaseResult,
    Expected,
    MetricChange,
    OutcomeChange,
    RetrievedPassage,
    RunSummary,
)


def normalized(text: str) -> str:
    """Case folded, whitespace collapsed: how evidence is compared."""
    return " ".join(text.split()).casefold()


def holds_evidence(text: str, evidence: Sequence[str]) -> bool:
    """The text contains at least one evidence phrase."""
    body = normalized(text)
    return any(normalized(phrase) in body for phrase in evidence)


def is_correct(passage: RetrievedPassage, expected: Expected) -> bool:
    """A correct passage holds an evidence phrase or comes from the expected source."""
    return passage.holds_evidence or (
        expected.expected_source_id is not None and passage.source_id == expected.expected_source_id
    )


def first_correct_rank(retrieved: Sequence[RetrievedPassage], expected: Expected) -> int | None:
    """The rank (from 1) of the first correct passage among the retrieved ones."""
    return next(
        (rank for rank, passage in enumerate(retrieved, 1) if is_correct(passage, expected)), None
    )


def judge(
    position: int,
    question: str,
    expected: Expected,
    retrieved: list[RetrievedPassage],
    *,
    answered: bool,
    answer: str,
    cited_chunk_ids: list[str],
    confidence: float,
    latency_ms: int | None,
    error: str | None = None,
) -> CaseResult:
    """One case's result. Unanswerable cases have no hit, rank or citation verdict; a case whose
    model call failed (`error`) has no answer verdicts."""
    answerable = not expected.unanswerable
    rank = first_correct_rank(retrieved, expected) if answerable else None
    cited = set(cited_chunk_ids)
    citation_correct = (
        any(is_correct(p, expected) for p in retrieved if p.chunk_id in cited)
        if answerable and answered and error is None
        else None
    )
    evidence_in_answer = (
        answered and holds_evidence(answer, expected.evidence)
        if answerable and expected.evidence and error is None
        else None
    )
    return CaseResult(
        position=position,
        question=question,
        expected=expected,
        retrieved=retrieved,
        hit=rank is not None if answerable else None,
        rank=rank,
        answered=answered,
        answer=answer,
        cited_chunk_ids=cited_chunk_ids,
        citation_correct=citation_correct,
        evidence_in_answer=evidence_in_answer,
        confidence=confidence,
        latency_ms=latency_ms,
        error=error,
    )


def _share(outcomes: Iterable[bool | float]) -> float | None:
    values = [float(outcome) for outcome in outcomes]
    return sum(values) / len(values) if values else None


def p95(values: Sequence[int]) -> int | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summarize(results: Sequence[CaseResult], k: int) -> RunSummary:
    """The run's metrics from its per-case results. Retrieval metrics count every answerable
    case; answer metrics leave out the cases whose model call failed."""
    answerable = [r for r in results if not r.expected.unanswerable]
    unanswerable = [r for r in results if r.expected.unanswerable]
    return RunSummary(
        cases=len(results),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        errors=sum(r.error is not None for r in results),
        k=k,
        recall_at_k=_share(bool(r.hit) for r in answerable),
        mrr=_share(1 / r.rank if r.rank else 0.0 for r in answerable),
        answered_rate=_share(r.answered for r in answerable if r.error is None),
        idk_rate=_share(not r.answered for r in unanswerable if r.error is None),
        citation_accuracy=_share(
            r.citation_correct for r in answerable if r.citation_correct is not None
        ),
        evidence_in_answer_rate=_share(
            r.evidence_in_answer for r in answerable if r.evidence_in_answer is not None
        ),
        p95_latency_ms=p95([r.latency_ms for r in results if r.latency_ms is not None]),
    )


def metric_changes(base: RunSummary, head: RunSummary) -> list[MetricChange]:
    """Every summary metric of both runs, with head - base."""
    changes = []
    for metric in RunSummary.model_fields:
        before, after = getattr(base, metric), getattr(head, metric)
        delta = None if before is None or after is None else after - before
        changes.append(MetricChange(metric=metric, base=before, head=after, delta=delta))
    return changes


def outcome_changes(
    base: Sequence[CaseResult], head: Sequence[CaseResult]
) -> tuple[list[OutcomeChange], list[str], list[str]]:
    """The cases whose hit or answered outcome differs, matched by question (repeated questions
    pair up in order); then the questions only in base, and only in head."""
    waiting: defaultdict[str, deque[CaseResult]] = defaultdict(deque)
    for result in base:
        waiting[result.question].append(result)
    changed, only_in_head = [], []
    for after in head:
        if not waiting[after.question]:
            only_in_head.append(after.question)
            continue
        before = waiting[after.question].popleft()
        if (before.hit, before.answered) != (after.hit, after.answered):
            changed.append(
                OutcomeChange(
                    question=after.question,
                    base_hit=before.hit,
                    head_hit=after.hit,
                    base_answered=before.answered,
                    head_answered=after.answered,
                )
            )
    only_in_base = [r.question for left in waiting.values() for r in left]
    return changed, only_in_base, only_in_head


# The CLI's threshold options and the summary metric each bounds from below.
THRESHOLDS: Mapping[str, str] = {
    "min_recall": "recall_at_k",
    "min_answered": "answered_rate",
    "min_idk": "idk_rate",
    "min_citation": "citation_accuracy",
}


def shortfalls(summary: RunSummary, minimums: Mapping[str, float]) -> dict[str, str]:
    """The metrics under their minimum, each with why (a metric no case measures is under)."""
    failures = {}
    for metric, minimum in minimums.items():
        value = getattr(summary, metric)
        if value is None:
            failures[metric] = f"{metric}: no case measures it (minimum {minimum:g})"
        elif value < minimum:
            failures[metric] = f"{metric} {value:.3f} is under the minimum {minimum:g}"
    return failures
