"""MongoIndexSet reconciliation as a plain typed function (the kopf handler only wires it)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.db import MongoDatabase
from app.core.indexes import IndexOutcome, IndexState, parse_index_set, reconcile_indexes

from botsmith_operator.conditions import condition

_CHANGES = {IndexState.CREATED, IndexState.REBUILT, IndexState.DROPPED}
_GOOD = {IndexState.PRESENT, IndexState.CREATED, IndexState.REBUILT}


def managed_from_status(status: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """The indexes an earlier pass created or adopted, as `collection/name` in the status."""
    entries = (status or {}).get("managedIndexes") or []
    return {tuple(entry.split("/", 1)) for entry in entries if "/" in entry}


@dataclass(frozen=True)
class IndexSetReport:
    outcomes: list[IndexOutcome]
    generation: int | None

    @property
    def desired(self) -> int:
        return sum(1 for o in self.outcomes if o.state is not IndexState.DROPPED)

    @property
    def present(self) -> int:
        return sum(1 for o in self.outcomes if o.state in _GOOD)

    @property
    def changes(self) -> list[IndexOutcome]:
        return [o for o in self.outcomes if o.state in _CHANGES]

    @property
    def problems(self) -> list[IndexOutcome]:
        return [o for o in self.outcomes if o.state in {IndexState.FAILED, IndexState.MISMATCHED}]

    def status(self) -> dict[str, Any]:
        problems = self.problems
        ready = not problems
        summary = f"{self.present}/{self.desired} indexes present"
        detail = "; ".join(
            f"{o.collection}.{o.name}: {o.state.value} ({o.message})" for o in problems
        )
        return {
            "observedGeneration": self.generation,
            "desired": self.desired,
            "present": self.present,
            "managedIndexes": sorted(f"{o.collection}/{o.name}" for o in self.outcomes if o.exists),
            "indexes": [
                {
                    "collection": o.collection,
                    "name": o.name,
                    "state": o.state.value,
                    **({"message": o.message} if o.message else {}),
                }
                for o in self.outcomes
            ],
            "conditions": [
                condition(
                    "Ready", ready, "AllIndexesPresent" if ready else "IndexesNotReady", summary
                ),
                condition(
                    "Degraded",
                    bool(problems),
                    "IndexProblems" if problems else "NoProblems",
                    detail or "every index matches its definition",
                ),
            ],
        }


async def reconcile_index_set(
    db: MongoDatabase,
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    generation: int | None,
) -> IndexSetReport:
    """Raises InvalidIndexSetError for a bad spec and PyMongo's connection errors when the
    database cannot be reached; everything else ends up in the report."""
    specs = parse_index_set(spec)
    outcomes = await reconcile_indexes(
        db,
        specs,
        managed=managed_from_status(status),
        allow_rebuild=bool(spec.get("allowRebuild", False)),
    )
    return IndexSetReport(outcomes, generation)
