"""The Helm chart, checked offline: lint, rendering with every values file, the rendered objects
against Kubernetes' own schemas (and the CRDs' for ours), checkov, and the chart's policies."""

import base64
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
    JWT_SECRET_ARGS,
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
VALUES_FILES: dict[str, tuple[Path, ...]] = {
    "defaults": (),
    "dev": (CHART / "values-dev.yaml",),
    "production": (CHART / "ci/production-values.yaml",),
    "everything": (CHART / "ci/everything-values.yaml",),
    # The cluster tier's release (k8s-tests/test_full_cluster.py).
    "local-cluster": (CHART / "values-dev.yaml", ROOT / "k8s-tests/local-cluster-values.yaml"),
}
PRIVATE_V4 = {
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
}
PRIVATE_V6 = {"fc00::/7", "fe80::/10"}


def values_args(name: str) -> list[str]:
    paths = VALUES_FILES[name]
    return [arg for path in paths for arg in ("-f", str(path))] if paths else JWT_SECRET_ARGS


def container_env(manifest: Manifest) -> dict[str, dict[str, Any]]:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item for item in container.get("env", [])}


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
    assert {"REDIS_URL", "JWT_SECRET"} <= set(secret["data"])
    assert set(named(dev, "Secret", "-mongodb-url")["data"]) == {"MONGO_URL"}


def test_the_bundled_database_names_a_replica_set_only_when_it_runs_one() -> None:
    def database(*args: str) -> tuple[str, Manifest]:
        manifests = render("-f", str(CHART / "values-dev.yaml"), *args)
        secret = named(manifests, "Secret", "-mongodb-url")
        url = base64.b64decode(secret["data"]["MONGO_URL"]).decode()
        return url, named(manifests, "StatefulSet", "-mongodb")

    url, mongod = database()
    assert url.endswith("/?replicaSet=rs0")
    assert mongod["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    url, ferretdb = database(
        "--set", "mongodb.engine=ferretdb", "--set", "mongodb.persistent=false"
    )
    assert (
        url == "mongodb://release-botsmith-mongodb-0.release-botsmith-mongodb.botsmith.svc:27017/"
    )
    container = ferretdb["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/ferretdb:local"
    assert container["args"] == ["-listen-addr", "0.0.0.0:27017", "-data-dir", "/data/db"]
    assert "volumeClaimTemplates" not in ferretdb["spec"]
    volumes = ferretdb["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "emptyDir": {}} in volumes


def test_large_integers_from_a_values_file_reach_the_settings_as_integers(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("config:\n  rateLimitPerMinute: 1000000\n  rateLimitPerHour: 100000000\n")
    settings = named(render("-f", str(values)), "ConfigMap", "-config")["data"]
    assert settings["RATE_LIMIT_PER_MINUTE"] == "1000000"  # not "1e+06"
    assert settings["RATE_LIMIT_PER_HOUR"] == "100000000"


def test_an_existing_secret_replaces_the_charts_own() -> None:
    manifests = render("-f", str(CHART / "ci/production-values.yaml"))
    assert not by_kind(manifests, "Secret")
    env_from = named(manifests, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0][
        "envFrom"
    ]
    assert {"secretRef": {"name": "botsmith-production"}} in env_from
    for component in ("-api", "-worker"):
        env = container_env(named(manifests, "Deployment", component))
        assert env["MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "botsmith-production-mongodb-url",
            "key": "MONGO_URL",
        }


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


def test_the_operator_may_read_only_the_database_url_secret_and_write_only_its_config_map() -> None:
    for args, mongo_url_secret in (
        (["-f", str(CHART / "ci/everything-values.yaml")], "release-botsmith-mongodb-url"),
        (["-f", str(CHART / "ci/production-values.yaml")], "botsmith-production-mongodb-url"),
    ):
        manifests = render(*args)
        rules = named(manifests, "Role", "-operator")["rules"]
        core = [rule for rule in rules if "" in rule["apiGroups"]]
        by_resource = {resource: rule for rule in core for resource in rule["resources"]}
        assert set(by_resource) == {"secrets", "configmaps", "events"}
        secrets, config_maps = by_resource["secrets"], by_resource["configmaps"]
        assert secrets["resourceNames"] == [mongo_url_secret]
        assert secrets["verbs"] == ["get"]
        assert config_maps["resourceNames"] == ["release-botsmith-read-policy"]
        assert "create" not in config_maps["verbs"]
        assert {"get", "update", "patch"} <= set(config_maps["verbs"])
        # The app Secret (JWT_SECRET, LLM keys) is not the operator's to read.
        app_secrets = {"release-botsmith-secrets", "botsmith-production"}
        assert not app_secrets & set(secrets["resourceNames"])
        # It cannot create the ConfigMap, so the chart does; the operator fills it.
        config_map = named(manifests, "ConfigMap", "-read-policy")
        assert "data" not in config_map
        for kind in ("MongoIndexSet", "MongoReadPolicy"):
            (resource,) = by_kind(manifests, kind)
            assert resource["spec"]["databaseRef"]["secretName"] == mongo_url_secret
        cluster_rules = named(manifests, "ClusterRole", "-operator-botsmith")["rules"]
        assert {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get", "list", "watch"],
        } in cluster_rules


def test_the_database_url_has_a_secret_of_its_own_that_the_api_and_the_worker_read() -> None:
    manifests = render("-f", str(CHART / "values-dev.yaml"))
    assert "MONGO_URL" not in named(manifests, "Secret", "-secrets")["data"]
    assert set(named(manifests, "Secret", "-mongodb-url")["data"]) == {"MONGO_URL"}
    for component in ("-api", "-worker"):
        env = container_env(named(manifests, "Deployment", component))
        assert env["MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "release-botsmith-mongodb-url",
            "key": "MONGO_URL",
        }


def test_an_existing_secret_needs_a_database_url_secret_of_its_own_for_the_operator() -> None:
    existing = ["--set", "secrets.existingSecret=everything", "--set", "redis.enabled=true"]
    refused = helm("template", "release", str(CHART), *existing, check=False)
    assert refused.returncode != 0
    assert "secrets.existingMongoUrlSecret" in refused.stderr

    # Without the operator, MONGO_URL may stay in the existing Secret, read through envFrom.
    manifests = render(*existing, "--set", "operator.enabled=false")
    assert not by_kind(manifests, "Secret")
    assert "MONGO_URL" not in container_env(named(manifests, "Deployment", "-api"))

    manifests = render(
        *existing, "--set", "secrets.mongoUrl=mongodb://db.example.com/?replicaSet=rs"
    )
    (secret,) = by_kind(manifests, "Secret")
    assert secret["metadata"]["name"] == "release-botsmith-mongodb-url"


def test_the_jwt_secret_is_required_and_every_render_is_the_same() -> None:
    for missing in ([], ["--set", "secrets.jwtSecret="]):
        result = helm("template", "release", str(CHART), *missing, check=False)
        assert result.returncode != 0
        assert "secrets.jwtSecret" in result.stderr
        assert "secrets.existingSecret" in result.stderr
    short = helm("template", "release", str(CHART), "--set", "secrets.jwtSecret=short", check=False)
    assert short.returncode != 0
    assert "/secrets/jwtSecret" in short.stderr

    args = ["-f", str(CHART / "values-dev.yaml")]
    first, second = render(*args), render(*args)
    assert first == second
    assert named(first, "Secret", "-secrets") == named(second, "Secret", "-secrets")


def test_metrics_are_scraped_on_their_own_port_and_never_routed_publicly() -> None:
    manifests = render(
        "-f",
        str(CHART / "ci/everything-values.yaml"),
        "--set",
        "api.metricsPort=9200",
        api_versions=MONITORING_APIS,
    )
    api = named(manifests, "Deployment", "-api")
    assert container_env(api)["METRICS_PORT"]["value"] == "9200"
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9200} in container["ports"]

    (monitor,) = by_kind(manifests, "ServiceMonitor")
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
    public = named(manifests, "Service", "-api")
    assert [port["name"] for port in public["spec"]["ports"]] == ["http"]
    scraped = named(manifests, "Service", "-api-metrics")
    assert scraped["spec"]["clusterIP"] == "None"
    assert scraped["spec"]["ports"] == [{"name": "metrics", "port": 9200, "targetPort": "metrics"}]

    (ingress,) = by_kind(manifests, "Ingress")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert not path["path"].startswith("/metrics")
            assert path["backend"]["service"] == {
                "name": "release-botsmith-api",
                "port": {"name": "http"},
            }

    production = render("-f", str(CHART / "ci/production-values.yaml"))
    policy = named(production, "NetworkPolicy", "-api")["spec"]["ingress"]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    (metrics_rule,) = [rule for rule in policy if rule["ports"] == [{"port": "metrics"}]]
    assert metrics_rule["from"] == [monitoring]
    for rule in policy:
        if rule["ports"] == [{"port": "http"}]:
            assert monitoring not in rule["from"]


def test_the_worker_reaches_public_web_ports_and_allowed_networks_but_no_private_range() -> None:
    manifests = render(
        "-f",
        str(CHART / "values-dev.yaml"),
        "--set-json",
        'worker.egress.allow=["192.168.10.0/24","fd00:10::/64"]',
    )
    policy = named(manifests, "NetworkPolicy", "-worker-egress")
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    rules = policy["spec"]["egress"]
    dns = [rule for rule in rules if "to" not in rule]
    assert dns == [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]

    blocks = {
        peer["ipBlock"]["cidr"]: (peer["ipBlock"].get("except", []), rule.get("ports"))
        for rule in rules
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }
    v4_except, v4_ports = blocks["0.0.0.0/0"]
    v6_except, v6_ports = blocks["::/0"]
    assert set(v4_except) >= PRIVATE_V4
    assert set(v6_except) >= PRIVATE_V6
    web = [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]
    assert v4_ports == v6_ports == web
    assert blocks["192.168.10.0/24"] == ([], None)
    assert blocks["fd00:10::/64"] == ([], None)

    (datastores,) = [rule for rule in rules if any("podSelector" in p for p in rule.get("to", []))]
    selector = datastores["to"][0]["podSelector"]["matchExpressions"]
    assert {
        "key": "app.kubernetes.io/instance",
        "operator": "In",
        "values": ["release"],
    } in selector
    assert {27017, 6379} == {port["port"] for port in datastores["ports"]}

    without = render("-f", str(CHART / "values-dev.yaml"), "--set", "worker.egress.enabled=false")
    assert not [
        p
        for p in by_kind(without, "NetworkPolicy")
        if p["metadata"]["name"].endswith("-worker-egress")
    ]
