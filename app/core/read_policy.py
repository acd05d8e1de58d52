"""Read preferences per workload, from the file the operator writes (a mounted ConfigMap).

`auth` reads and every write always go to the primary. `listing`, `conversations` and
`analytics` use the mode the file gives (primary when there is no file). The file is re-read
when it changes: a mounted ConfigMap is replaced in place, so no restart is needed.
"""

import asyncio
import json
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo.read_preferences import (
    Nearest,
    Primary,
    PrimaryPreferred,
    Secondary,
    SecondaryPreferred,
    _ServerMode,
)

from app.core.db import MongoDatabase
from app.core.metrics import READ_PREFERENCE

logger = logging.getLogger(__name__)

Mode = Literal["primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"]
Workload = Literal["auth", "listing", "conversations", "analytics"]
WORKLOADS: tuple[Workload, ...] = ("auth", "listing", "conversations", "analytics")
ALWAYS_PRIMARY: frozenset[Workload] = frozenset({"auth"})


class WorkloadPreference(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: Mode = "primary"
    max_staleness_seconds: int | None = Field(default=None, alias="maxStalenessSeconds", ge=90)
    tag_sets: list[dict[str, str]] = Field(default_factory=list, alias="tagSets")

    def read_preference(self) -> _ServerMode:
        if self.mode == "primary":
            return Primary()
        staleness = self.max_staleness_seconds or -1
        tags = self.tag_sets or None
        kinds: dict[str, type[_ServerMode]] = {
            "primaryPreferred": PrimaryPreferred,
            "secondary": Secondary,
            "secondaryPreferred": SecondaryPreferred,
            "nearest": Nearest,
        }
        return kinds[self.mode](tag_sets=tags, max_staleness=staleness)  # type: ignore[call-arg]


class EffectiveReadPolicy(BaseModel):
    """The file's content, as the operator writes it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    workloads: dict[str, WorkloadPreference] = Field(default_factory=dict)
    fallback_reason: str | None = Field(default=None, alias="fallbackReason")

    def for_workload(self, workload: Workload) -> WorkloadPreference:
        if workload in ALWAYS_PRIMARY:
            return WorkloadPreference()
        return self.workloads.get(workload, WorkloadPreference())


class ReadRouter:
    """Hands out database handles with the read preference of a workload."""

    def __init__(self, db: MongoDatabase, policy_file: Path | None) -> None:
        self._db = db
        self._file = policy_file
        self._signature: tuple[float, int] | None = None
        self._handles: dict[Workload, MongoDatabase] = {}
        self._apply(EffectiveReadPolicy())
        self.reload()

    def database(self, workload: Workload) -> MongoDatabase:
        return self._handles[workload]

    def reload(self) -> bool:
        """Re-reads the file if it changed; a bad file keeps the current policy."""
        if self._file is None:
            return False
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            return False
        signature = (stat.st_mtime, stat.st_size)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            policy = EffectiveReadPolicy.model_validate(json.loads(self._file.read_text()))
        except (OSError, ValueError, ValidationError) as error:
            logger.warning(
                "read policy %s not applied, keeping the current one: %s", self._file, error
            )
            return False
        self._apply(policy)
        modes = ", ".join(f"{w}={policy.for_workload(w).mode}" for w in WORKLOADS)
        logger.info("read policy applied from %s: %s", self._file, modes)
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload()

    def _apply(self, policy: EffectiveReadPolicy) -> None:
        for workload in WORKLOADS:
            preference = policy.for_workload(workload)
            previous = self._handles.get(workload)
            if previous is not None:
                READ_PREFERENCE.labels(workload, previous.read_preference.mongos_mode).set(0)
            self._handles[workload] = self._db.with_options(
                read_preference=preference.read_preference()
            )
            READ_PREFERENCE.labels(workload, preference.mode).set(1)
