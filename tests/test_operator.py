"""The operator's reconcile functions against real FerretDB, and the API following the read
policy file it writes."""

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from app.core.db import MongoClient, MongoDatabase
from app.core.indexes import (
    InvalidIndexSetError,
    catalogue_text,
    load_catalogue,
    parse_index_set,
)
from pymongo import AsyncMongoClient

from botsmith_operator.index_sets import reconcile_index_set
from botsmith_operator.read_policies import Topology, effective_policy, reconcile_read_policy
from tests.conftest import Services, StartApi
from tests.support.chart import CHART, render
from tests.support.metrics import scrape, value
from tests.support.processes import poll_until

SPEC: dict[str, Any] = {
    "databaseRef": {"secretName": "mongo"},
    "database": "ignored-in-these-tests",
    "collections": [
        {
            "name": "things",
            "indexes": [
                {"name": "idx_things_owner", "keys": [{"field": "owner", "order": "asc"}]},
                {
                    "name": "idx_things_code",
                    "keys": [{"field": "code", "order": "asc"}],
                    "unique": True,
                },
                {
                    "name": "idx_things_owner_created",
                    "keys": [
                        {"field": "owner", "order": "asc"},
                        {"field": "created", "order": "desc"},
                    ],
                },
                {"name": "idx_things_text", "keys": [{"field": "body", "order": "text"}]},
                {
                    "name": "idx_things_ttl",
                    "keys": [{"field": "expires", "order": "asc"}],
                    "expireAfterSeconds": 0,
                },
            ],
        }
    ],
}


@pytest.fixture
async def mongo(services: Services) -> AsyncIterator[MongoClient]:
    client: MongoClient = AsyncMongoClient(services.mongo_url, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
def db(mongo: MongoClient) -> MongoDatabase:
    return mongo[f"op_{uuid.uuid4().hex[:10]}"]


async def _index_names(db: MongoDatabase) -> dict[str, Any]:
    return {info["name"]: info for info in await (await db["things"].list_indexes()).to_list()}


def _states(status: dict[str, Any]) -> dict[str, str]:
    return {index["name"]: index["state"] for index in status["indexes"]}


@pytest.mark.anyio
async def test_first_run_creates_and_reports_refused_kinds_per_index(db: MongoDatabase) -> None:
    report = await reconcile_index_set(db, SPEC, None, generation=1)
    status = report.status()
    assert _states(status) == {
        "idx_things_owner": "created",
        "idx_things_code": "created",
        "idx_things_owner_created": "created",
        "idx_things_text": "failed",
        "idx_things_ttl": "failed",
    }
    messages = {i["name"]: i.get("message", "") for i in status["indexes"]}
    assert "expireAfterSeconds" in messages["idx_things_ttl"]
    assert "text" in messages["idx_things_text"]
    assert status["observedGeneration"] == 1
    assert (status["present"], status["desired"]) == (3, 5)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "True"
    assert set(await _index_names(db)) == {
        "_id_",
        "idx_things_owner",
        "idx_things_code",
        "idx_things_owner_created",
    }
    assert (await _index_names(db))["idx_things_code"]["unique"] is True


@pytest.mark.anyio
async def test_a_second_run_changes_nothing(db: MongoDatabase) -> None:
    first = (await reconcile_index_set(db, SPEC, None, 1)).status()
    before = await _index_names(db)
    second = await reconcile_index_set(db, SPEC, first, 1)
    assert second.changes == []
    assert _states(second.status())["idx_things_owner"] == "present"
    assert await _index_names(db) == before


@pytest.mark.anyio
async def test_the_drift_pass_restores_a_manually_dropped_index(db: MongoDatabase) -> None:
    status = (await reconcile_index_set(db, SPEC, None, 1)).status()
    await db["things"].drop_index("idx_things_owner")
    report = await reconcile_index_set(db, SPEC, status, 1)
    assert [(o.name, o.state.value) for o in report.changes] == [("idx_things_owner", "created")]
    assert "idx_things_owner" in await _index_names(db)


@pytest.mark.anyio
async def test_a_changed_definition_is_reported_and_rebuilt_only_when_allowed(
    db: MongoDatabase,
) -> None:
    status = (await reconcile_index_set(db, SPEC, None, 1)).status()
    changed = json.loads(json.dumps(SPEC))
    changed["collections"][0]["indexes"][0]["unique"] = True  # idx_things_owner

    reported = (await reconcile_index_set(db, changed, status, 2)).status()
    assert _states(reported)["idx_things_owner"] == "mismatched"
    assert "unique" not in (await _index_names(db))["idx_things_owner"]

    changed["allowRebuild"] = True
    rebuilt = (await reconcile_index_set(db, changed, reported, 3)).status()
    assert _states(rebuilt)["idx_things_owner"] == "rebuilt"
    assert (await _index_names(db))["idx_things_owner"]["unique"] is True


@pytest.mark.anyio
async def test_only_managed_indexes_that_left_the_spec_are_dropped(db: MongoDatabase) -> None:
    await db["things"].create_index("manual", name="idx_someone_elses")
    status = (await reconcile_index_set(db, SPEC, None, 1)).status()
    shorter = json.loads(json.dumps(SPEC))
    shorter["collections"][0]["indexes"] = shorter["collections"][0]["indexes"][1:]

    report = await reconcile_index_set(db, shorter, status, 2)
    assert [(o.name, o.state.value) for o in report.changes] == [("idx_things_owner", "dropped")]
    names = set(await _index_names(db))
    assert "idx_things_owner" not in names
    assert {"_id_", "idx_someone_elses", "idx_things_code"} <= names
    assert "things/idx_things_owner" not in report.status()["managedIndexes"]


@pytest.mark.anyio
async def test_an_invalid_spec_is_refused_before_touching_the_database(db: MongoDatabase) -> None:
    duplicate = json.loads(json.dumps(SPEC))
    indexes = duplicate["collections"][0]["indexes"]
    indexes.append(dict(indexes[0]))
    with pytest.raises(InvalidIndexSetError, match="listed twice"):
        await reconcile_index_set(db, duplicate, None, 1)
    assert await _index_names(db) == {}


def test_the_catalogue_has_every_seed_index_and_at_least_25() -> None:
    names = {spec.name for spec in load_catalogue()}
    assert len(names) >= 25
    assert {
        "idx_users_email",
        "idx_users_id",
        "idx_users_status_role_created",
        "idx_chatbots_user_id",
        "idx_chatbots_user_created",
        "idx_chatbots_name_text",
        "idx_messages_conversation_timestamp",
        "idx_messages_chatbot",
        "idx_conversations_chatbot_started",
        "idx_conversations_session",
        "idx_chunks_chatbot_source",
        "idx_chunks_content_text",
    } <= names


def test_the_chart_renders_the_catalogue_into_the_default_index_set() -> None:
    chart_copy = CHART / "files/indexes.yaml"
    assert chart_copy.read_text() == catalogue_text(), (
        "charts/botsmith/files/indexes.yaml differs from app/indexes.yaml: copy it over"
    )
    (index_set,) = render("--show-only", "templates/mongoindexset.yaml")
    assert index_set["kind"] == "MongoIndexSet"
    assert index_set["spec"]["collections"] == yaml.safe_load(catalogue_text())["collections"]
    assert parse_index_set(index_set["spec"]) == load_catalogue()


def test_the_crd_schema_accepts_the_catalogue_as_a_spec() -> None:
    crd = yaml.safe_load((CHART / "crds/mongoindexsets.botsmith.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    index_schema = schema["properties"]["collections"]["items"]["properties"]["indexes"]["items"]
    allowed = set(index_schema["properties"])
    orders = set(index_schema["properties"]["keys"]["items"]["properties"]["order"]["enum"])
    catalogue = yaml.safe_load(catalogue_text())
    for collection in catalogue["collections"]:
        for index in collection["indexes"]:
            assert set(index) <= allowed, index["name"]
            assert {key["order"] for key in index["keys"]} <= orders


@pytest.mark.anyio
async def test_a_standalone_server_falls_back_to_primary_and_says_why(mongo: MongoClient) -> None:
    spec = {
        "databaseRef": {"secretName": "mongo"},
        "workloads": {
            "auth": {"mode": "primary"},
            "listing": {"mode": "secondaryPreferred"},
            "analytics": {"mode": "secondary", "maxStalenessSeconds": 120},
        },
    }
    report = await reconcile_read_policy(mongo, spec)
    assert report.topology.replica_set is None
    assert report.document()["workloads"] == {
        "auth": {"mode": "primary", "tagSets": []},
        "listing": {"mode": "primary", "tagSets": []},
        "analytics": {"mode": "primary", "tagSets": []},
    }
    conditions = {c["type"]: c for c in report.status(4)["conditions"]}
    assert conditions["Fallback"]["status"] == "True"
    assert conditions["Fallback"]["reason"] == "NoReplicaSet"
    assert "standalone" in conditions["Fallback"]["message"]


def test_a_replica_set_without_fresh_secondaries_falls_back_to_primary_preferred() -> None:
    spec = {"workloads": {"listing": {"mode": "secondary", "maxStalenessSeconds": 90}}}
    stale = effective_policy(spec, Topology("rs0", secondary_lags=[400.0]))
    assert stale.document()["workloads"]["listing"]["mode"] == "primaryPreferred"
    assert stale.effective.fallback_reason == "NoHealthySecondary"
    fresh = effective_policy(spec, Topology("rs0", secondary_lags=[3.0]))
    assert fresh.document()["workloads"]["listing"]["mode"] == "secondary"
    assert fresh.fallbacks == {}


def test_the_api_follows_a_changed_policy_file_without_a_restart(
    start_api: StartApi, tmp_path: Path
) -> None:
    policy = tmp_path / "read-policy.json"
    policy.write_text(json.dumps({"workloads": {"listing": {"mode": "primary"}}}))
    api = start_api({"READ_POLICY_FILE": str(policy), "READ_POLICY_RELOAD_SECONDS": "0.3"})

    def listing_mode(mode: str) -> float:
        with api.client() as client:
            return value(scrape(client), "botsmith_read_preference", workload="listing", mode=mode)

    assert listing_mode("primary") == 1
    # What the operator writes when the replica set has a healthy secondary.
    policy.write_text(
        json.dumps(
            {
                "workloads": {
                    "listing": {"mode": "secondaryPreferred"},
                    "auth": {"mode": "secondary"},
                }
            }
        )
    )
    poll_until(lambda: listing_mode("secondaryPreferred"), lambda v: v == 1, 10)
    assert listing_mode("primary") == 0
    with api.client() as client:
        samples = scrape(client)
        # auth never leaves the primary, whatever the file says
        assert value(samples, "botsmith_read_preference", workload="auth", mode="primary") == 1
        assert client.get("/api/health").status_code == 200
    assert "read policy applied" in api.output()
