"""Full tier, on running pods: a cluster with a ready node (BOTSMITH_KUBECONFIG; the test command
starts one with scripts/cluster/) and the product image loaded into it (BOTSMITH_IMAGE). The
release rolls out, `helm test` passes, the operator reconciles, knowledge goes through the worker
pod, events cross API pods, the HPA scales out and back in, and neither a rolling update nor a
deleted pod loses requests. Tests that call Services and pods directly need their cluster
addresses routed to this host (true of the one-node cluster here, not of kind); they are skipped
elsewhere, and BOTSMITH_REQUIRE_CLUSTER=1 turns every skip of this tier into a failure."""

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database
from websockets.sync.client import connect

from conftest import helm, kubectl, unavailable
from tests.support.api import add_text, create_chatbot, sign_up
from tests.support.chart import CHART

NAMESPACE = "botsmith-full"
RELEASE = "botsmith"
API = f"{RELEASE}-api"
LOAD = """
import concurrent.futures, time, urllib.request
url = "http://botsmith-api/api/health"
def hammer(_):
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
        except Exception:
            time.sleep(0.1)
with concurrent.futures.ThreadPoolExecutor(64) as pool:
    list(pool.map(hammer, range(64)))
"""


@pytest.fixture(scope="module")
def image() -> tuple[str, str]:
    reference = os.environ.get("BOTSMITH_IMAGE")
    if not reference or ":" not in reference:
        unavailable("set BOTSMITH_IMAGE to the image loaded into the cluster (name:tag)")
    repository, tag = reference.rsplit(":", 1)
    return repository, tag


@pytest.fixture(scope="module")
def installed(full_cluster: Path, image: tuple[str, str]) -> Path:
    repository, tag = image
    extra_values = os.environ.get("BOTSMITH_VALUES")
    helm(
        full_cluster,
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(CHART / "values-dev.yaml"),
        *(["-f", extra_values] if extra_values else []),
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        "api.autoscaling.targetCPUUtilizationPercentage=20",
        "--wait",
        "--timeout",
        "10m",
    )
    return full_cluster


def run(kubeconfig: Path, *args: str) -> str:
    """kubectl in the release's namespace; its output, or an assertion error with what it said."""
    result = kubectl(kubeconfig, "-n", NAMESPACE, *args)
    assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def get(kubeconfig: Path, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run(kubeconfig, "get", *args, "-o", "json"))
    return document


def api_pods(kubeconfig: Path) -> list[dict[str, Any]]:
    """The API's running, ready pods (not those shutting down)."""
    pods = get(kubeconfig, "pods", "-l", "app.kubernetes.io/component=api")["items"]
    return [
        pod
        for pod in pods
        if "deletionTimestamp" not in pod["metadata"]
        and any(
            condition["type"] == "Ready" and condition["status"] == "True"
            for condition in pod["status"].get("conditions", [])
        )
    ]


def wait_for_api_pods(kubeconfig: Path, count: int, timeout: float = 240) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while (pods := api_pods(kubeconfig)) and len(pods) != count:
        assert time.monotonic() < deadline, f"{len(pods)} ready API pods, expected {count}"
        time.sleep(2)
    return pods


def set_api_replicas(kubeconfig: Path, replicas: int) -> list[dict[str, Any]]:
    """Holds the API at `replicas` through its HPA's bounds (the HPA owns the replica count)."""
    patch = {"spec": {"minReplicas": replicas, "maxReplicas": max(replicas, 3)}}
    run(kubeconfig, "patch", "hpa", API, "--type=merge", "-p", json.dumps(patch))
    return wait_for_api_pods(kubeconfig, replicas)


@pytest.fixture(scope="module")
def service_url(installed: Path) -> str:
    """The API Service's cluster address, when this host can reach it."""
    address = get(installed, "service", API)["spec"]["clusterIP"]
    url = f"http://{address}"
    try:
        httpx.get(f"{url}/readyz", timeout=5)
    except httpx.TransportError as error:
        unavailable(f"the API Service at {url} is not reachable from this host: {error}")
    return url


def test_every_deployment_rolls_out_and_helm_test_passes(installed: Path) -> None:
    for deployment in ("api", "worker", "operator", "redis"):
        run(installed, "rollout", "status", f"deployment/{RELEASE}-{deployment}", "--timeout=300s")
    run(installed, "rollout", "status", f"statefulset/{RELEASE}-mongodb", "--timeout=300s")
    for pod in get(installed, "pods", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]:
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") == "test":
            continue
        statuses = pod["status"].get("containerStatuses", [])
        assert statuses, pod["metadata"]["name"]
        assert all(status["ready"] for status in statuses), pod["metadata"]["name"]
    helm(installed, "test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m")


PROBE = """
import json, os, pathlib
try:
    pathlib.Path("/probe").write_text("x")
    root_writable = True
except OSError:
    root_writable = False
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({
    "uid": os.getuid(),
    "root_writable": root_writable,
    "seccomp": status["Seccomp"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"),
}))
"""


@pytest.mark.parametrize(
    ("component", "needs_token"), [("api", False), ("worker", False), ("operator", True)]
)
def test_the_security_settings_hold_on_a_real_kubelet(
    installed: Path, component: str, needs_token: bool
) -> None:
    seen = json.loads(
        run(installed, "exec", f"deployment/{RELEASE}-{component}", "--", "python", "-c", PROBE)
    )
    assert seen == {
        "uid": 10001,
        "root_writable": False,
        "seccomp": "2",  # a filter: the runtime's default profile
        "no_new_privs": "1",
        "token": needs_token,  # only the operator talks to the Kubernetes API
    }


def reconciled_index_set(kubeconfig: Path, timeout: float = 180) -> dict[str, Any]:
    """The chart's MongoIndexSet once the operator has reported on every index in it."""
    deadline = time.monotonic() + timeout
    while True:
        index_set = get(kubeconfig, "mongoindexset", RELEASE)
        status = index_set.get("status", {})
        if status.get("conditions") and len(status.get("indexes", [])) == status.get("desired"):
            return index_set
        assert time.monotonic() < deadline, f"the operator never reported: {status}"
        time.sleep(2)


def test_the_operator_reconciles_the_indexes_and_the_read_policy(installed: Path) -> None:
    index_set = reconciled_index_set(installed)
    status = index_set["status"]
    desired = sum(len(collection["indexes"]) for collection in index_set["spec"]["collections"])
    # What the database really holds, read from the database pod.
    address = get(installed, "pod", f"{RELEASE}-mongodb-0")["status"]["podIP"]
    mongo: MongoClient[dict[str, Any]]
    with MongoClient(f"mongodb://{address}:27017/", serverSelectionTimeoutMS=10_000) as mongo:
        database: Database[dict[str, Any]] = mongo[index_set["spec"]["database"]]
        present = sum(
            index["name"] in database[collection["name"]].index_information()
            for collection in index_set["spec"]["collections"]
            for index in collection["indexes"]
        )
    failed = [index for index in status["indexes"] if index["state"] == "failed"]
    assert present >= desired - 3  # FerretDB lacks text and TTL indexes; MongoDB has them all
    assert status["desired"] == desired
    assert status["present"] == present == desired - len(failed)
    assert all(index["message"] for index in failed)
    ready = "True" if present == desired else "False"
    columns = run(installed, "get", "mongoindexset", RELEASE, "--no-headers")
    assert columns.split()[1:4] == [ready, str(present), str(desired)]

    config_map = get(installed, "configmap", f"{RELEASE}-read-policy")
    policy = json.loads(config_map["data"]["read-policy.json"])
    analytics_mode = policy["workloads"]["analytics"]["mode"]
    # Every API pod applies the file the kubelet projects from the ConfigMap.
    for pod in api_pods(installed):
        metrics = run(
            installed,
            "exec",
            pod["metadata"]["name"],
            "--",
            "python",
            "-c",
            "import urllib.request; print(urllib.request.urlopen("
            "'http://127.0.0.1:9100/metrics').read().decode())",
        )
        line = f'botsmith_read_preference{{mode="{analytics_mode}",workload="analytics"}} 1.0'
        assert line in metrics, metrics


def test_a_source_goes_through_the_worker_pod_and_is_answered_by_an_api_pod(
    service_url: str,
) -> None:
    with httpx.Client(base_url=service_url, timeout=30) as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = add_text(
            client, owner, bot, "Kettle", "Its warranty lasts 24 months from the date of purchase."
        )
        assert source["status"] == "ready", source
        answer = client.post(
            f"/api/chatbots/{bot}/chat",
            json={"message": "How long is the warranty?"},
            headers=owner.headers,
        )
        assert answer.status_code == 200, answer.text
        assert "24 months" in answer.json()["answer"]


def test_a_websocket_event_crosses_from_one_api_pod_to_another(
    installed: Path, service_url: str
) -> None:
    first, second = (pod["status"]["podIP"] for pod in set_api_replicas(installed, 2))
    with httpx.Client(base_url=f"http://{second}:8000", timeout=30) as client:
        owner = sign_up(client)
        with connect(f"ws://{first}:8000/api/ws?token={owner.access_token}") as ws:
            json.loads(ws.recv(timeout=10))  # the greeting
            ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            bot = create_chatbot(client, owner)["id"]
            started = client.post(
                f"/api/chatbots/{bot}/chat", json={"message": "hello"}, headers=owner.headers
            )
            assert started.status_code == 200, started.text
            deadline = time.monotonic() + 20
            while True:
                message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message["type"] == "event":
                    break
            assert message["data"]["type"] == "conversation.started"
            assert message["data"]["chatbot_id"] == bot


@dataclass
class Load:
    """Steady requests through the Service from a few threads (each at most `per_second`);
    every outcome counted."""

    url: str
    threads: int = 8
    per_second: float = 20
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _hammer(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(f"{self.url}/api/health")
                    outcome = "" if response.status_code == 200 else str(response.status_code)
                except httpx.HTTPError as error:
                    outcome = f"{type(error).__name__}: {error}"
                with self._lock:
                    if outcome:
                        self.failures.append(outcome)
                    else:
                        self.ok += 1
                self._stop.wait(1 / self.per_second)

    @contextmanager
    def running(self) -> Iterator["Load"]:
        workers = [threading.Thread(target=self._hammer) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            for worker in workers:
                worker.join(timeout=30)


def test_a_rolling_update_under_load_loses_no_request(installed: Path, service_url: str) -> None:
    set_api_replicas(installed, 2)
    before = {pod["metadata"]["name"] for pod in api_pods(installed)}
    with Load(service_url).running() as load:
        time.sleep(2)  # the load is flowing before the update starts
        helm(
            installed,
            "upgrade",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "config.logLevel=info",  # an env value: every API pod is replaced
            "--set",
            "api.autoscaling.minReplicas=2",
            "--wait",
            "--timeout",
            "5m",
        )
        wait_for_api_pods(installed, 2)
    after = {pod["metadata"]["name"] for pod in api_pods(installed)}
    print(f"rolling update: {load.ok} requests succeeded, {len(load.failures)} failed")
    assert not before & after, "the upgrade did not replace the API pods"
    assert load.ok > 100
    assert load.failures == []


def test_deleting_an_api_pod_under_load_keeps_requests_succeeding(
    installed: Path, service_url: str
) -> None:
    victim = set_api_replicas(installed, 2)[0]["metadata"]["name"]
    with Load(service_url).running() as load:
        time.sleep(2)
        run(installed, "delete", "pod", victim, "--wait=true", "--timeout=120s")
        wait_for_api_pods(installed, 2)
        time.sleep(2)  # and the load keeps flowing to the replacement
    print(f"pod deleted: {load.ok} requests succeeded, {len(load.failures)} failed")
    assert load.ok > 100
    # At most the requests the deleted pod held when it stopped: one per client thread.
    assert len(load.failures) <= load.threads, load.failures


def test_the_hpa_scales_the_api_out_under_load_and_back_in(installed: Path) -> None:
    if kubectl(installed, "get", "--raw", "/apis/metrics.k8s.io/v1beta1").returncode != 0:
        unavailable("the cluster has no metrics-server, so the HPA cannot see CPU")
    set_api_replicas(installed, 1)
    repository = os.environ["BOTSMITH_IMAGE"]
    kubectl(installed, "-n", NAMESPACE, "delete", "pod", "load", "--ignore-not-found")
    run(
        installed,
        "run",
        "load",
        f"--image={repository}",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--command",
        "--",
        "python",
        "-c",
        LOAD,
    )
    started = time.monotonic()
    timeline: list[tuple[int, int]] = []

    def desired() -> int:
        replicas: int = get(installed, "hpa", API).get("status", {}).get("desiredReplicas", 1)
        if not timeline or timeline[-1][1] != replicas:
            timeline.append((round(time.monotonic() - started), replicas))
        return replicas

    try:
        while desired() < 2:
            assert time.monotonic() - started < 300, f"no scale-out in 5 minutes: {timeline}"
            time.sleep(5)
    finally:
        run(installed, "delete", "pod", "load", "--ignore-not-found", "--wait=false")
    while desired() > 1:
        assert time.monotonic() - started < 600, f"no scale-in within 10 minutes: {timeline}"
        time.sleep(5)
    print(f"HPA timeline (seconds since the load started, desired replicas): {timeline}")
