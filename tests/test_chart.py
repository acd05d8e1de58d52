"""The Helm chart, checked offline: lint, rendering with every values file, the rendered objects
against Kubernetes' own schemas (and the CRDs' for ours), checkov, and the chart's policies."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.chart import (
    CHART,
    MONITORING_APIS,
    Manifest,
    by_kind,
    helm,
    named,
    render,
)
from tests.support.processes import ROOT

CHECKOV = ROOT / ".cache/checkov/bin/checkov"
KUBERNETES_VERSION = "1.37.0"
VALUES_FILES = {
    "defaults": None,
    "dev": CHART / "values-dev.yaml",
    "production": CHART / "ci/production-values.yaml",
    "everything": CHART / "ci/everything-values.yaml",
}


def values_args(name: str) -> list[str]:
    path = VALUES_FILES[name]
    return ["-f", str(path)] if path else []


@pytest.fixture(scope="module", params=list(VALUES_FILES))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    name: str = request.param
    return name, render(*values_args(name), api_versions=MONITORING_APIS)


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for manifest in manifests:
        if manifest["kind"] == "Pod":
            yield manifest, manifest["spec"]
        elif manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield manifest, manifest["spec"]["template"]["spec"]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in (CHART / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schemas[(api_version, crd["spec"]["names"]["kind"])] = version["schema"][
                "openAPIV3Schema"
            ]
    return schemas


@pytest.mark.parametrize("name", list(VALUES_FILES))
def test_helm_lint_passes_strictly_with_every_values_file(name: str) -> None:
    result = helm("lint", "--strict", str(CHART), *values_args(name), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_object_is_valid_against_the_kubernetes_and_crd_schemas(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    ours = crd_schemas()
    validated = 0
    for manifest in manifests:
        key = (manifest["apiVersion"], manifest["kind"])
        if key in ours:
            jsonschema.validate(manifest, ours[key])
        elif manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            # The Prometheus operator's CRDs are not installed here; their spec is checked below.
            continue
        else:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        validated += 1
    assert validated >= 15, name


def test_checkov_passes_on_every_rendering_with_the_justified_exceptions(
    tmp_path: Path,
) -> None:
    for name in VALUES_FILES:
        manifests = render(*values_args(name), api_versions=MONITORING_APIS)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--config-file",
            str(CHART / "ci/checkov.yaml"),
            "--compact",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_container_has_resources_probes_a_pinned_image_and_runs_non_root(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    checked = 0
    for owner, spec in pod_specs(manifests):
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        is_test_hook = owner["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
        pod_non_root = spec.get("securityContext", {}).get("runAsNonRoot") is True
        for container in spec.get("initContainers", []) + spec["containers"]:
            label = f"{where} container {container['name']}"
            assert {"requests", "limits"} <= set(container.get("resources", {})), label
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), label
            if not is_test_hook:
                assert "livenessProbe" in container, label
                assert "readinessProbe" in container, label
            image = container["image"]
            assert "@sha256:" in image or (":" in image.rsplit("/", 1)[-1]), label
            assert not image.endswith(":latest"), label
            security = container.get("securityContext", {})
            assert pod_non_root or security.get("runAsNonRoot") is True, label
            assert security.get("readOnlyRootFilesystem") is True, label
            assert security.get("allowPrivilegeEscalation") is False, label
            assert security.get("capabilities", {}).get("drop") == ["ALL"], label
            checked += 1
    assert checked >= 3


def test_misspelt_and_unsafe_values_are_refused_by_the_schema() -> None:
    for bad, complaint in (
        (["--set", "api.replicas=3"], "additional properties 'replicas' not allowed"),
        (["--set", "image.tag=latest"], "/image/tag"),
        (["--set", "config.environment=prod"], "/config/environment"),
        (["--set", "api.autoscaling.targetCPUUtilizationPercentage=150"], "targetCPU"),
    ):
        result = helm("template", "release", str(CHART), *bad, check=False)
        assert result.returncode != 0, bad
        assert complaint in result.stderr, result.stderr


def test_every_value_is_documented() -> None:
    """Each value has a description, or sits in a documented object (a probe's Kubernetes
    fields, say); the schema carries the `# --` comments of values.yaml."""
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], path: str) -> Iterator[str]:
        for key, child in node.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            if child.get("description"):
                continue
            if child.get("type") == "object" and "properties" in child:
                yield from walk(child, here)
            else:
                yield here

    assert list(walk(schema, "")) == []


def test_the_api_deployment_shuts_down_gracefully_and_reads_the_operators_outputs() -> None:
    manifests = render("--set", "api.gracefulTimeoutSeconds=40", "--set", "api.preStopSeconds=7")
    pod = named(manifests, "Deployment", "-api")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["GUNICORN_GRACEFUL_TIMEOUT"] == "40"
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "7"]
    assert pod["terminationGracePeriodSeconds"] > 40 + 7
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", env["PROMETHEUS_MULTIPROC_DIR"], "/etc/botsmith/read-policy"} <= mounts
    assert env["READ_POLICY_FILE"].startswith("/etc/botsmith/read-policy/")
    config = named(manifests, "ConfigMap", "-config")["data"]
    assert config["MONGO_ENSURE_INDEXES"] == "false"  # the operator owns the indexes

    without_operator = render(
        "--set", "operator.enabled=false", "--set", "operator.indexSet.enabled=false"
    )
    assert "MONGO_ENSURE_INDEXES" not in named(without_operator, "ConfigMap", "-config")["data"]


def test_monitoring_objects_need_both_the_value_and_the_installed_crds() -> None:
    enabled = [
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
    ]
    assert not by_kind(render(*enabled), "ServiceMonitor")
    assert not by_kind(render(*enabled), "PrometheusRule")
    with_crds = render(*enabled, api_versions=MONITORING_APIS)
    assert by_kind(with_crds, "ServiceMonitor")
    assert by_kind(with_crds, "PrometheusRule")
    assert not by_kind(render(api_versions=MONITORING_APIS), "ServiceMonitor")


def test_the_worker_needs_redis_and_the_bundled_datastores_are_opt_in() -> None:
    defaults = render()
    assert not [
        d for d in by_kind(defaults, "Deployment") if d["metadata"]["name"].endswith("-worker")
    ]
    assert not by_kind(defaults, "StatefulSet")
    dev = render("-f", str(CHART / "values-dev.yaml"))
    named(dev, "Deployment", "-worker")
    mongodb = named(dev, "StatefulSet", "-mongodb")
    assert mongodb["spec"]["replicas"] == 1
    secret = named(dev, "Secret", "-secrets")
    assert {"MONGO_URL", "REDIS_URL", "JWT_SECRET"} <= set(secret["data"])


def test_an_existing_secret_replaces_the_charts_own() -> None:
    manifests = render("-f", str(CHART / "ci/production-values.yaml"))
    assert not by_kind(manifests, "Secret")
    env_from = named(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0][
        "envFrom"
    ]
    assert {"secretRef": {"name": "botsmith-production"}} in env_from


def test_the_dashboard_ships_with_the_sidecar_label_and_covers_every_area() -> None:
    manifests = render()
    config_map = named(manifests, "ConfigMap", "-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["botsmith.json"])
    expressions = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    for metric in (
        "botsmith_http_requests_total",
        "botsmith_http_request_duration_seconds_bucket",
        "botsmith_http_requests_in_flight",
        "botsmith_concurrency_rejections_total",
        "botsmith_rate_limit_decisions_total",
        "botsmith_rate_limit_fail_open_total",
        "botsmith_mongo_pool_checked_out_connections",
        "botsmith_mongo_pool_wait_queue_operations",
        "botsmith_cache_requests_total",
        "botsmith_websocket_connections",
        "botsmith_ingest_backlog",
        "botsmith_ingest_jobs_total",
        "botsmith_process_resident_memory_bytes",
    ):
        assert metric in expressions, metric


def test_skaffold_deploys_this_chart_with_the_dev_values_and_the_built_image() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    (artifact,) = config["build"]["artifacts"]
    assert (ROOT / artifact["docker"]["dockerfile"]).exists()
    (release,) = config["deploy"]["helm"]["releases"]
    assert ROOT / release["chartPath"] == CHART
    for values_file in release["valuesFiles"]:
        assert (ROOT / values_file).exists(), values_file
    image = artifact["image"]
    assert release["setValueTemplates"] == {
        "image.repository": f"{{{{.IMAGE_REPO_{image}}}}}",
        "image.tag": f"{{{{.IMAGE_TAG_{image}}}}}",
    }
    assert {profile["name"] for profile in config["profiles"]} == {"kind", "minikube"}
    out = helm("template", release["name"], str(CHART), *values_args("dev")).stdout
    services = {
        d["metadata"]["name"] for d in yaml.safe_load_all(out) if d and d["kind"] == "Service"
    }
    assert config["portForward"][0]["resourceName"] in services
