"""Full tier, on a kind or minikube cluster with ready nodes (BOTSMITH_KUBECONFIG) and the image
loaded into it (BOTSMITH_IMAGE, e.g. `botsmith:dev` after `kind load docker-image`): the
release rolls out with the bundled MongoDB and Redis, `helm test` passes, and the API's HPA
scales out under load. Skipped, with the reason, where there is no such cluster."""

import json
import os
import time
from pathlib import Path

import pytest

from conftest import helm, kubectl
from tests.support.chart import CHART

NAMESPACE = "botsmith-full"
RELEASE = "botsmith"
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
        pytest.skip("full tier: set BOTSMITH_IMAGE to the image loaded into the cluster (name:tag)")
    repository, tag = reference.rsplit(":", 1)
    return repository, tag


@pytest.fixture(scope="module")
def installed(full_cluster: Path, image: tuple[str, str]) -> Path:
    repository, tag = image
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


def test_every_deployment_rolls_out_and_helm_test_passes(installed: Path) -> None:
    for deployment in ("api", "worker", "operator", "redis"):
        status = kubectl(
            installed,
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            f"deployment/{RELEASE}-{deployment}",
            "--timeout=300s",
        )
        assert status.returncode == 0, status.stderr
    helm(installed, "test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m")


def test_the_api_scales_out_under_load(installed: Path) -> None:
    if kubectl(installed, "get", "--raw", "/apis/metrics.k8s.io/v1beta1").returncode != 0:
        pytest.skip("full tier: the cluster has no metrics-server, so the HPA cannot see CPU")
    repository = os.environ["BOTSMITH_IMAGE"]
    kubectl(installed, "-n", NAMESPACE, "delete", "pod", "load", "--ignore-not-found")
    started = kubectl(
        installed,
        "-n",
        NAMESPACE,
        "run",
        "load",
        f"--image={repository}",
        "--restart=Never",
        "--command",
        "--",
        "python",
        "-c",
        LOAD,
    )
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 300
    replicas = 1
    while time.monotonic() < deadline:
        hpa = kubectl(installed, "-n", NAMESPACE, "get", "hpa", f"{RELEASE}-api", "-o", "json")
        replicas = json.loads(hpa.stdout).get("status", {}).get("desiredReplicas", 1)
        if replicas > 1:
            break
        time.sleep(10)
    kubectl(installed, "-n", NAMESPACE, "delete", "pod", "load", "--ignore-not-found")
    assert replicas > 1, "the HPA did not scale the API out within 5 minutes of load"
