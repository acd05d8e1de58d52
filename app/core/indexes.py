"""The index catalogue (app/indexes.yaml) and the code that creates its missing indexes."""

import logging
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pymongo.errors import OperationFailure

from app.core.db import MongoDatabase

logger = logging.getLogger(__name__)

Order = Literal[1, -1, "text"]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    collection: str
    name: str
    keys: tuple[tuple[str, Order], ...]
    unique: bool = False
    sparse: bool = False
    expire_after_seconds: int | None = None
    partial_filter: dict[str, Any] | None = None
    weights: dict[str, int] = field(default_factory=dict)

    def create_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"name": self.name}
        if self.unique:
            options["unique"] = True
        if self.sparse:
            options["sparse"] = True
        if self.expire_after_seconds is not None:
            options["expireAfterSeconds"] = self.expire_after_seconds
        if self.partial_filter:
            options["partialFilterExpression"] = self.partial_filter
        if self.weights:
            options["weights"] = self.weights
        return options


def parse_catalogue(document: dict[str, Any]) -> tuple[IndexSpec, ...]:
    specs = []
    for collection, indexes in document["collections"].items():
        for index in indexes:
            specs.append(
                IndexSpec(
                    collection=collection,
                    name=index["name"],
                    keys=tuple((key["field"], key["order"]) for key in index["keys"]),
                    unique=index.get("unique", False),
                    sparse=index.get("sparse", False),
                    expire_after_seconds=index.get("expire_after_seconds"),
                    partial_filter=index.get("partial_filter"),
                    weights=index.get("weights", {}),
                )
            )
    return tuple(specs)


def catalogue_text() -> str:
    return resources.files("app").joinpath("indexes.yaml").read_text()


@cache
def load_catalogue() -> tuple[IndexSpec, ...]:
    return parse_catalogue(yaml.safe_load(catalogue_text()))


@dataclass(frozen=True, slots=True)
class IndexResult:
    spec: IndexSpec
    error: str | None = None


async def ensure_indexes(db: MongoDatabase) -> list[IndexResult]:
    """Creates the catalogue's missing indexes; one the server refuses does not stop the rest."""
    results = []
    for spec in load_catalogue():
        try:
            await db[spec.collection].create_index(list(spec.keys), **spec.create_options())
            results.append(IndexResult(spec))
        except OperationFailure as error:
            message = str(error.details.get("errmsg", error) if error.details else error)
            results.append(IndexResult(spec, message))
    refused = [f"{r.spec.name} ({r.error})" for r in results if r.error]
    if refused:
        logger.info("indexes: the server refused %d: %s", len(refused), "; ".join(refused))
    return results
