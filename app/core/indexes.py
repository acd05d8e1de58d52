"""MongoDB index sets: the catalogue (app/indexes.yaml), and reconciling a database with a set.

One implementation serves the API's start-up pass, `botsmith indexes plan|apply` and the
operator's MongoIndexSet reconciliation: compare with listIndexes, create what is missing, leave
what matches, rebuild a changed index only when allowed, and drop only indexes this set manages
and no longer lists. `_id_` and indexes the set does not manage are never touched.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pymongo.errors import OperationFailure

from app.core.db import MongoDatabase

logger = logging.getLogger(__name__)

Order = Literal["asc", "desc", "text"]
_DIRECTIONS: dict[str, int | str] = {"asc": 1, "desc": -1, "text": "text"}


class InvalidIndexSetError(ValueError):
    """The index set itself is wrong (retrying will not help)."""


@dataclass(frozen=True, slots=True)
class IndexSpec:
    collection: str
    name: str
    keys: tuple[tuple[str, Order], ...]
    unique: bool = False
    sparse: bool = False
    expire_after_seconds: int | None = None
    partial_filter: Mapping[str, Any] | None = None
    weights: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        return any(order == "text" for _, order in self.keys)

    def key_document(self) -> list[tuple[str, int | str]]:
        return [(name, _DIRECTIONS[order]) for name, order in self.keys]

    def create_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"name": self.name}
        if self.unique:
            options["unique"] = True
        if self.sparse:
            options["sparse"] = True
        if self.expire_after_seconds is not None:
            options["expireAfterSeconds"] = self.expire_after_seconds
        if self.partial_filter:
            options["partialFilterExpression"] = dict(self.partial_filter)
        if self.weights:
            options["weights"] = dict(self.weights)
        return options

    def matches(self, info: Mapping[str, Any]) -> bool:
        """Whether an index as listIndexes reports it has this definition."""
        if self.is_text:
            text_fields = {name for name, order in self.keys if order == "text"}
            weights = {name: int(value) for name, value in info.get("weights", {}).items()}
            expected = dict(self.weights) or dict.fromkeys(text_fields, 1)
            if "_fts" not in info.get("key", {}) or weights != expected:
                return False
        else:
            actual = [(name, _number(value)) for name, value in info.get("key", {}).items()]
            if actual != [(name, _number(value)) for name, value in self.key_document()]:
                return False
        return (
            bool(info.get("unique", False)) == self.unique
            and bool(info.get("sparse", False)) == self.sparse
            and _optional_int(info.get("expireAfterSeconds")) == self.expire_after_seconds
            and (info.get("partialFilterExpression") or None) == (self.partial_filter or None)
        )


def _number(value: object) -> object:
    return float(value) if isinstance(value, int | float) else value


def _optional_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def parse_index_set(document: Mapping[str, Any]) -> tuple[IndexSpec, ...]:
    """The indexes of a catalogue or a MongoIndexSet spec (`collections: [{name, indexes}]`)."""
    specs: list[IndexSpec] = []
    seen: set[tuple[str, str]] = set()
    for collection in document.get("collections") or []:
        name = collection.get("name")
        if not name:
            raise InvalidIndexSetError("every collection needs a name")
        for index in collection.get("indexes") or []:
            spec = _parse_index(name, index)
            if (name, spec.name) in seen:
                raise InvalidIndexSetError(f"index {spec.name} is listed twice on {name}")
            if spec.name == "_id_":
                raise InvalidIndexSetError("_id_ is MongoDB's own index and cannot be managed")
            seen.add((name, spec.name))
            specs.append(spec)
    return tuple(specs)


def _parse_index(collection: str, index: Mapping[str, Any]) -> IndexSpec:
    name = index.get("name")
    keys = index.get("keys") or []
    if not name or not keys:
        raise InvalidIndexSetError(f"an index on {collection} lacks a name or keys")
    parsed: list[tuple[str, Order]] = []
    for key in keys:
        order = key.get("order")
        if order not in _DIRECTIONS or not key.get("field"):
            raise InvalidIndexSetError(
                f"index {name} on {collection}: each key needs a field and an order of "
                "asc, desc or text"
            )
        parsed.append((key["field"], order))
    spec = IndexSpec(
        collection=collection,
        name=name,
        keys=tuple(parsed),
        unique=bool(index.get("unique", False)),
        sparse=bool(index.get("sparse", False)),
        expire_after_seconds=index.get("expireAfterSeconds"),
        partial_filter=index.get("partialFilterExpression"),
        weights=index.get("weights") or {},
    )
    if spec.expire_after_seconds is not None and len(spec.keys) != 1:
        raise InvalidIndexSetError(f"index {name}: a TTL index has exactly one key")
    if spec.weights and not spec.is_text:
        raise InvalidIndexSetError(f"index {name}: weights apply to text indexes only")
    return spec


def catalogue_text() -> str:
    return resources.files("app").joinpath("indexes.yaml").read_text()


@cache
def load_catalogue() -> tuple[IndexSpec, ...]:
    return parse_index_set(yaml.safe_load(catalogue_text()))


class IndexState(StrEnum):
    PRESENT = "present"  # exists with this definition
    CREATED = "created"
    MISSING = "missing"  # a plan: would be created
    MISMATCHED = "mismatched"  # exists with another definition; rebuilding is not allowed
    REBUILT = "rebuilt"
    DROPPED = "dropped"  # managed by this set, no longer listed
    FAILED = "failed"  # the server refused it; message says why


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    collection: str
    name: str
    state: IndexState
    message: str | None = None

    @property
    def exists(self) -> bool:
        return self.state in {
            IndexState.PRESENT,
            IndexState.CREATED,
            IndexState.MISMATCHED,
            IndexState.REBUILT,
        }


_MISMATCH = "the index exists with another definition; set allowRebuild to rebuild it"


def _server_message(error: OperationFailure) -> str:
    details = error.details or {}
    return str(details.get("errmsg") or error)


async def reconcile_indexes(
    db: MongoDatabase,
    specs: Iterable[IndexSpec],
    *,
    managed: Iterable[tuple[str, str]] = (),
    allow_rebuild: bool = False,
    dry_run: bool = False,
) -> list[IndexOutcome]:
    """Brings the database in line with the set; with dry_run, only says what it would do.

    `managed` holds the (collection, name) pairs an earlier pass created or adopted: only those
    may be dropped. Connection errors propagate (the caller retries); a refused index is a
    FAILED outcome and the others carry on.
    """
    specs = list(specs)
    outcomes: list[IndexOutcome] = []
    listed = {(spec.collection, spec.name) for spec in specs}
    existing: dict[str, dict[str, Mapping[str, Any]]] = {}
    for collection in {spec.collection for spec in specs} | {c for c, _ in managed}:
        indexes = await (await db[collection].list_indexes()).to_list()
        existing[collection] = {info["name"]: info for info in indexes}

    for spec in specs:
        info = existing[spec.collection].get(spec.name)
        if info is not None and spec.matches(info):
            outcomes.append(IndexOutcome(spec.collection, spec.name, IndexState.PRESENT))
        elif info is not None and not allow_rebuild:
            message = _MISMATCH
            outcomes.append(
                IndexOutcome(spec.collection, spec.name, IndexState.MISMATCHED, message)
            )
        elif dry_run:
            state = IndexState.MISSING if info is None else IndexState.REBUILT
            outcomes.append(IndexOutcome(spec.collection, spec.name, state, "planned"))
        else:
            outcomes.append(await _create(db, spec, rebuild=info is not None))

    for collection, name in sorted(set(managed) - listed):
        if name == "_id_" or name not in existing.get(collection, {}):
            continue
        if not dry_run:
            await db[collection].drop_index(name)
        note = "planned" if dry_run else None
        outcomes.append(IndexOutcome(collection, name, IndexState.DROPPED, note))
    return outcomes


async def _create(db: MongoDatabase, spec: IndexSpec, *, rebuild: bool) -> IndexOutcome:
    try:
        if rebuild:
            await db[spec.collection].drop_index(spec.name)
        await db[spec.collection].create_index(spec.key_document(), **spec.create_options())
    except OperationFailure as error:
        return IndexOutcome(spec.collection, spec.name, IndexState.FAILED, _server_message(error))
    state = IndexState.REBUILT if rebuild else IndexState.CREATED
    return IndexOutcome(spec.collection, spec.name, state)


async def ensure_indexes(db: MongoDatabase) -> list[IndexOutcome]:
    """The API's start-up pass: creates the catalogue's missing indexes, changes nothing else."""
    outcomes = await reconcile_indexes(db, load_catalogue())
    refused = [f"{o.name} ({o.message})" for o in outcomes if o.state is IndexState.FAILED]
    if refused:
        logger.info("indexes: the server refused %d: %s", len(refused), "; ".join(refused))
    return outcomes
