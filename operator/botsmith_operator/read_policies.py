"""MongoReadPolicy reconciliation: the topology decides which preferences can be honoured."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.db import MongoClient
from app.core.read_policy import EffectiveReadPolicy, WorkloadPreference
from pymongo.errors import OperationFailure

from botsmith_operator.conditions import condition

_NEEDS_SECONDARY = {"secondary", "secondaryPreferred", "nearest"}


@dataclass(frozen=True)
class Topology:
    replica_set: str | None
    # Replication lag of each healthy secondary, in seconds (None: unknown).
    secondary_lags: list[float | None] = field(default_factory=list)

    def healthy_within(self, max_staleness: int | None) -> int:
        return sum(
            1
            for lag in self.secondary_lags
            if max_staleness is None or lag is None or lag <= max_staleness
        )


async def read_topology(client: MongoClient) -> Topology:
    hello = await client.admin.command("hello")
    set_name = hello.get("setName")
    if not set_name:
        return Topology(None)
    try:
        status = await client.admin.command("replSetGetStatus")
    except OperationFailure:
        # Not allowed to read it: count the secondaries hello names, lag unknown.
        return Topology(
            set_name, [None] * len(hello.get("secondaries", hello.get("hosts", [])[1:]))
        )
    members = status.get("members", [])
    primary = next((m for m in members if m.get("stateStr") == "PRIMARY"), None)
    primary_optime: datetime | None = primary.get("optimeDate") if primary else None
    lags: list[float | None] = []
    for member in members:
        if member.get("stateStr") != "SECONDARY" or member.get("health") != 1:
            continue
        optime = member.get("optimeDate")
        lag = (primary_optime - optime).total_seconds() if primary_optime and optime else None
        lags.append(lag)
    return Topology(set_name, lags)


@dataclass(frozen=True)
class ReadPolicyReport:
    effective: EffectiveReadPolicy
    topology: Topology
    fallbacks: dict[str, str]

    def document(self) -> dict[str, Any]:
        """What the ConfigMap carries for the API (read-policy.json)."""
        return self.effective.model_dump(by_alias=True, exclude_none=True)

    def status(self, generation: int | None) -> dict[str, Any]:
        summary = ", ".join(f"{w}={p.mode}" for w, p in sorted(self.effective.workloads.items()))
        fallback = bool(self.fallbacks)
        reason = self.effective.fallback_reason or "AsRequested"
        message = "; ".join(f"{w}: {why}" for w, why in sorted(self.fallbacks.items()))
        return {
            "observedGeneration": generation,
            "effective": summary,
            "topology": self.topology.replica_set or "standalone",
            "healthySecondaries": self.topology.healthy_within(None),
            "conditions": [
                condition("Ready", True, "PolicyWritten", summary),
                condition("Fallback", fallback, reason, message or "every workload as requested"),
            ],
        }


def effective_policy(spec: Mapping[str, Any], topology: Topology) -> ReadPolicyReport:
    fallback_mode = spec.get("fallbackMode", "primaryPreferred")
    workloads: dict[str, WorkloadPreference] = {}
    fallbacks: dict[str, str] = {}
    reason: str | None = None
    for name, raw in (spec.get("workloads") or {}).items():
        wanted = WorkloadPreference.model_validate(raw)
        if wanted.mode not in _NEEDS_SECONDARY:
            workloads[name] = wanted
            continue
        if topology.replica_set is None:
            reason = "NoReplicaSet"
            fallbacks[name] = f"{wanted.mode} needs a replica set; the server is standalone"
            workloads[name] = WorkloadPreference(mode="primary")
        elif topology.healthy_within(wanted.max_staleness_seconds) == 0:
            reason = reason or "NoHealthySecondary"
            within = (
                f" within {wanted.max_staleness_seconds} s" if wanted.max_staleness_seconds else ""
            )
            fallbacks[name] = f"{wanted.mode} wanted, but no healthy secondary{within}"
            workloads[name] = WorkloadPreference(mode=fallback_mode)
        else:
            workloads[name] = wanted
    effective = EffectiveReadPolicy(workloads=workloads, fallback_reason=reason)
    return ReadPolicyReport(effective, topology, fallbacks)


async def reconcile_read_policy(client: MongoClient, spec: Mapping[str, Any]) -> ReadPolicyReport:
    return effective_policy(spec, await read_topology(client))
