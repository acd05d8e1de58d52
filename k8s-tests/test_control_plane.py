"""The chart and the operator against a real kube-apiserver (control-plane tier): the chart
installs with every object accepted, the operator (out of cluster, with its ServiceAccount's
token, so with the chart's RBAC and nothing more) reconciles the chart's MongoIndexSet into
FerretDB and writes the read policy, and helm upgrade and rollback work.

The tests run in file order and share one release, as an operator's day would."""

import base64
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from pymongo import MongoClient

from conftest import Cluster, write_kubeconfig
from tests.conftest import Services, services  # noqa: F401  (the FerretDB of the test services)
from tests.support.chart import CHART
from tests.support.processes import VENV_BIN, ManagedProcess, free_port, poll_until

NAMESPACE = "botsmith"
RELEASE = "botsmith"
FULLNAME = "botsmith"  # the release name already contains the chart name
INDEX_SETS = f"/apis/botsmith.io/v1alpha1/namespaces/{NAMESPACE}/mongoindexsets"
PROBE_INDEX = {"name": "idx_k8s_probe", "keys": [{"field": "k8s_probe", "order": "asc"}]}
JWT_SECRET = uuid.uuid4().hex * 2

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def database(services: Services) -> str:  # noqa: F811
    return f"k8s_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def mongo(services: Services) -> Iterator[MongoClient[dict[str, Any]]]:  # noqa: F811
    client: MongoClient[dict[str, Any]] = MongoClient(services.mongo_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def release(control_plane: Cluster, services: Services, database: str) -> str:  # noqa: F811
    """`helm install` with every optional part that needs no extra CRDs: the rendered manifest."""
    control_plane.helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(CHART / "ci/everything-values.yaml"),
        "--set",
        "mongodb.enabled=false",
        "--set",
        f"secrets.mongoUrl={services.mongo_url}",
        "--set",
        f"config.dbName={database}",
        "--set",
        f"secrets.jwtSecret={JWT_SECRET}",
    )
    return control_plane.helm("get", "manifest", RELEASE, "--namespace", NAMESPACE)


@pytest.fixture(scope="module")
def operator(
    control_plane: Cluster, release: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    workdir = tmp_path_factory.mktemp("operator")
    with control_plane.client() as client:
        token_request = client.post(
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{FULLNAME}-operator/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
    token = token_request.raise_for_status().json()["status"]["token"]
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, control_plane.server, token)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [
        str(VENV_BIN / "botsmith-operator"),
        "--namespace",
        NAMESPACE,
        "--liveness",
        f"http://127.0.0.1:{free_port()}/healthz",
    ]
    with ManagedProcess(argv, workdir / "operator.log", env) as process:
        yield process


def resource_path(client: httpx.Client, manifest: Manifest) -> str:
    """The object's REST path, from the API server's discovery documents."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    group_path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    discovery = client.get(group_path).raise_for_status().json()
    (resource,) = [r for r in discovery["resources"] if r["kind"] == kind and "/" not in r["name"]]
    scope = f"/namespaces/{NAMESPACE}" if resource["namespaced"] else ""
    return f"{group_path}{scope}/{resource['name']}/{manifest['metadata']['name']}"


def get(client: httpx.Client, path: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(path).raise_for_status().json()
    return body


def index_set(client: httpx.Client) -> dict[str, Any]:
    return get(client, f"{INDEX_SETS}/{FULLNAME}")


def index_names(mongo: MongoClient[dict[str, Any]], database: str, collection: str) -> set[str]:
    return {index["name"] for index in mongo[database][collection].list_indexes()}


def reconciled(client: httpx.Client) -> dict[str, Any]:
    """Waits until the operator has reconciled the current generation of the index set."""
    return poll_until(
        lambda: index_set(client),
        lambda body: (
            body.get("status", {}).get("observedGeneration") == body["metadata"]["generation"]
        ),
        60,
    )


def test_helm_install_establishes_the_crds_and_every_object_is_accepted(
    control_plane: Cluster, release: str
) -> None:
    manifests = [doc for doc in yaml.safe_load_all(release) if doc]
    kinds = {m["kind"] for m in manifests}
    assert {
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "MongoIndexSet",
        "MongoReadPolicy",
    } <= kinds
    # The Prometheus operator's CRDs are not installed here, so the chart left its objects out.
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    with control_plane.client() as client:
        for name in ("mongoindexsets.botsmith.io", "mongoreadpolicies.botsmith.io"):
            crd = get(client, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
            assert established[0]["status"] == "True", name
        for manifest in manifests:
            stored = get(client, resource_path(client, manifest))
            assert stored["metadata"]["uid"], manifest["metadata"]["name"]
        history = json.loads(
            control_plane.helm("history", RELEASE, "--namespace", NAMESPACE, "--output", "json")
        )
        assert [entry["status"] for entry in history] == ["deployed"]


def test_the_api_server_refuses_an_invalid_index_set(control_plane: Cluster) -> None:
    invalid = {
        "apiVersion": "botsmith.io/v1alpha1",
        "kind": "MongoIndexSet",
        "metadata": {"name": "invalid"},
        "spec": {
            "databaseRef": {"secretName": "x"},
            "database": "x",
            "collections": [
                {"name": "c", "indexes": [{"name": "i", "keys": [{"field": "f", "order": "up"}]}]}
            ],
        },
    }
    with control_plane.client() as client:
        response = client.post(INDEX_SETS, json=invalid)
    assert response.status_code == 422, response.text
    assert "order" in response.json()["message"]


def test_the_operator_creates_the_catalogue_indexes_and_fills_status_and_columns(
    control_plane: Cluster,
    operator: ManagedProcess,
    mongo: MongoClient[dict[str, Any]],
    database: str,
) -> None:
    with control_plane.client() as client:
        body = reconciled(client)
        status = body["status"]
        desired = sum(len(c["indexes"]) for c in body["spec"]["collections"])
        assert status["desired"] == desired >= 25
        failed = [i for i in status["indexes"] if i["state"] == "failed"]
        # FerretDB refuses text and TTL indexes; everything else is created.
        assert status["present"] == desired - len(failed)
        assert all(i["message"] for i in failed)
        assert {"idx_users_email", "idx_chatbots_user_created"} <= {
            i["name"] for i in status["indexes"] if i["state"] in {"created", "present"}
        }
        assert "idx_users_email" in index_names(mongo, database, "users")

        table = client.get(
            f"{INDEX_SETS}/{FULLNAME}",
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        ).json()
        columns = [c["name"] for c in table["columnDefinitions"]]
        assert columns[:5] == ["Name", "Ready", "Present", "Desired", "Database"]
        cells = table["rows"][0]["cells"]
        assert cells[:5] == [
            FULLNAME,
            "False" if failed else "True",
            status["present"],
            desired,
            database,
        ]


def test_the_operator_writes_the_read_policy_config_map(
    control_plane: Cluster, operator: ManagedProcess
) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{FULLNAME}-read-policy"
    with control_plane.client() as client:
        # The chart creates it empty; the operator may update it, not create it.
        config_map = poll_until(
            lambda: get(client, path), lambda body: "read-policy.json" in body.get("data", {}), 60
        )
        policy = json.loads(config_map["data"]["read-policy.json"])
        # Patched, not replaced: Helm still owns it.
        assert config_map["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert set(policy["workloads"]) >= {"listing", "conversations", "analytics"}
        read_policy = get(
            client,
            f"/apis/botsmith.io/v1alpha1/namespaces/{NAMESPACE}/mongoreadpolicies/{FULLNAME}",
        )
        assert read_policy["status"]["configMap"] == f"{FULLNAME}-read-policy"


def _set_collections(client: httpx.Client, collections: list[dict[str, Any]]) -> None:
    client.patch(
        f"{INDEX_SETS}/{FULLNAME}",
        json={"spec": {"collections": collections}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()


def test_a_changed_index_set_creates_then_drops_a_managed_index(
    control_plane: Cluster,
    operator: ManagedProcess,
    mongo: MongoClient[dict[str, Any]],
    database: str,
) -> None:
    with control_plane.client() as client:
        original = reconciled(client)["spec"]["collections"]
        changed = [
            {**c, "indexes": [*c["indexes"], PROBE_INDEX]} if c["name"] == "chatbots" else c
            for c in original
        ]
        _set_collections(client, changed)
        status = reconciled(client)["status"]
        assert {"collection": "chatbots", "name": "idx_k8s_probe", "state": "created"} in status[
            "indexes"
        ]
        assert "idx_k8s_probe" in index_names(mongo, database, "chatbots")

        _set_collections(client, original)
        status = reconciled(client)["status"]
        assert "chatbots/idx_k8s_probe" not in status["managedIndexes"]
        assert "idx_k8s_probe" not in index_names(mongo, database, "chatbots")
        assert "idx_chatbots_user_created" in index_names(mongo, database, "chatbots")


def test_deleting_the_index_set_leaves_the_indexes(
    control_plane: Cluster,
    operator: ManagedProcess,
    mongo: MongoClient[dict[str, Any]],
    database: str,
) -> None:
    with control_plane.client() as client:
        client.delete(f"{INDEX_SETS}/{FULLNAME}").raise_for_status()
        poll_until(
            lambda: client.get(f"{INDEX_SETS}/{FULLNAME}").status_code, lambda c: c == 404, 30
        )
    assert "idx_users_email" in index_names(mongo, database, "users")


def _api_env(client: httpx.Client) -> dict[str, str]:
    deployment = get(client, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{FULLNAME}-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def _jwt_secret(client: httpx.Client) -> str:
    secret = get(client, f"/api/v1/namespaces/{NAMESPACE}/secrets/{FULLNAME}-secrets")
    return base64.b64decode(secret["data"]["JWT_SECRET"]).decode()


def test_helm_upgrade_keeps_the_secret_and_the_read_policy_and_rollback_restores_the_revision(
    control_plane: Cluster, operator: ManagedProcess, release: str
) -> None:
    read_policy = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{FULLNAME}-read-policy"
    with control_plane.client() as client:
        assert _jwt_secret(client) == JWT_SECRET
        assert _api_env(client)["UVICORN_WORKERS"] == "2"
        control_plane.helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "api.workers=3",
        )
        assert _api_env(client)["UVICORN_WORKERS"] == "3"
        assert _jwt_secret(client) == JWT_SECRET
        assert "read-policy.json" in get(client, read_policy)["data"], "the upgrade emptied it"
        # The upgrade restored the index set deleted above, and the operator reconciles it again.
        assert reconciled(client)["status"]["present"] > 0

        control_plane.helm("rollback", RELEASE, "1", "--namespace", NAMESPACE)
        assert _api_env(client)["UVICORN_WORKERS"] == "2"
        history = json.loads(
            control_plane.helm("history", RELEASE, "--namespace", NAMESPACE, "--output", "json")
        )
        assert [entry["revision"] for entry in history] == [1, 2, 3]
        assert history[-1]["status"] == "deployed"
        assert history[-1]["description"] == "Rollback to 1"
