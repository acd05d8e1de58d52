"""kopf handlers: thin wiring around the typed reconcile functions, registered by `register`
(with the settings `botsmith-operator` was started with), not at import."""

import logging
from typing import Any

import kopf
from app.core.db import MongoClient
from app.core.indexes import IndexState, InvalidIndexSetError
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, OperationFailure

from botsmith_operator import GROUP, VERSION
from botsmith_operator.conditions import condition, merge_conditions
from botsmith_operator.index_sets import reconcile_index_set
from botsmith_operator.kube import load_credentials, read_secret_value, write_config_map
from botsmith_operator.read_policies import reconcile_read_policy

RETRY_DELAY = 30.0
READ_POLICY_CHECK_SECONDS = 60.0


def register(registry: kopf.OperatorRegistry, drift_seconds: float) -> None:
    """Registers every handler; index sets are checked for drift every `drift_seconds`."""
    # The Kubernetes login: the same kubernetes_asyncio configuration the handlers use.
    kopf.on.login(registry=registry)(kopf.login_via_async_client)
    kopf.on.startup(registry=registry)(configure)
    kopf.on.cleanup(registry=registry)(close_clients)
    for plural, handler, interval in (
        ("mongoindexsets", index_set, drift_seconds),
        ("mongoreadpolicies", read_policy, READ_POLICY_CHECK_SECONDS),
    ):
        kopf.on.resume(GROUP, VERSION, plural, registry=registry)(handler)
        kopf.on.create(GROUP, VERSION, plural, registry=registry)(handler)
        kopf.on.update(GROUP, VERSION, plural, field="spec", registry=registry)(handler)
        kopf.timer(
            GROUP, VERSION, plural, interval=interval, initial_delay=interval, registry=registry
        )(handler)


async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    memo.clients = {}
    await load_credentials()


async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    for mongo in memo.clients.values():
        await mongo.close()


async def _client(memo: kopf.Memo, namespace: str, ref: dict[str, Any]) -> MongoClient:
    """A pooled client per connection string, read from the referenced Secret."""
    url = await read_secret_value(namespace, ref["secretName"], ref.get("key", "MONGO_URL"))
    if url not in memo.clients:
        memo.clients[url] = AsyncMongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)
    mongo: MongoClient = memo.clients[url]
    return mongo


async def index_set(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    namespace: str | None,
    patch: kopf.Patch,
    memo: Any,
    **_: Any,
) -> None:
    assert namespace is not None  # the resources are namespaced
    try:
        mongo = await _client(memo, namespace, dict(spec["databaseRef"]))
        db = mongo[spec["database"]]
        report = await reconcile_index_set(db, dict(spec), dict(status), meta.get("generation"))
    except InvalidIndexSetError as error:
        patch.status["conditions"] = merge_conditions(
            status.get("conditions"),
            [
                condition("Ready", False, "InvalidSpec", str(error)),
                condition("Degraded", True, "InvalidSpec", str(error)),
            ],
        )
        raise kopf.PermanentError(str(error)) from error
    except (ConnectionFailure, OperationFailure, KeyError) as error:
        patch.status["conditions"] = merge_conditions(
            status.get("conditions"),
            [condition("Ready", False, "DatabaseUnavailable", str(error))],
        )
        raise kopf.TemporaryError(f"database not reachable: {error}", delay=RETRY_DELAY) from error
    new_status = report.status()
    new_status["conditions"] = merge_conditions(status.get("conditions"), new_status["conditions"])
    patch.status.update(new_status)
    for outcome in report.changes:
        kopf.info(
            body,
            reason=f"Index{outcome.state.value.capitalize()}",
            message=f"{outcome.collection}.{outcome.name} {outcome.state.value}",
        )
    for outcome in report.problems:
        reason = "IndexFailed" if outcome.state is IndexState.FAILED else "IndexMismatched"
        kopf.warn(
            body, reason=reason, message=f"{outcome.collection}.{outcome.name}: {outcome.message}"
        )


async def read_policy(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: Any,
    **_: Any,
) -> None:
    assert namespace is not None  # the resources are namespaced
    try:
        mongo = await _client(memo, namespace, dict(spec["databaseRef"]))
        report = await reconcile_read_policy(mongo, dict(spec))
    except (ConnectionFailure, OperationFailure, KeyError) as error:
        raise kopf.TemporaryError(f"database not reachable: {error}", delay=RETRY_DELAY) from error
    owner = {
        "api_version": f"{GROUP}/{VERSION}",
        "kind": "MongoReadPolicy",
        "name": name,
        "uid": meta["uid"],
        "controller": True,
    }
    config_map = spec.get("configMapName") or f"{name}-effective"
    await write_config_map(namespace, config_map, owner, report.document())
    new_status = report.status(meta.get("generation"))
    new_status["conditions"] = merge_conditions(status.get("conditions"), new_status["conditions"])
    new_status["configMap"] = config_map
    patch.status.update(new_status)
    if report.fallbacks:
        kopf.warn(
            body, reason="ReadPreferenceFallback", message=new_status["conditions"][1]["message"]
        )
