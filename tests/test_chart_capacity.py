"""The production-size values keep to the capacity model of docs/scaling.md: the MongoDB
connections they can open stay under the server limit the model assumes, and the API pods are
the size the model's per-pod numbers were worked out for."""

import math

from tests.support.chart import CHART, Manifest, named, render

SERVER_CONNECTION_LIMIT = 3000  # docs/scaling.md, section 5
MONITORING_CONNECTIONS = 2  # per process and replica-set member (PyMongo's monitors)


def _hpa_max(manifests: list[Manifest], component: str) -> int:
    replicas: int = named(manifests, "HorizontalPodAutoscaler", component)["spec"]["maxReplicas"]
    return replicas


def test_the_production_values_open_fewer_mongodb_connections_than_the_server_allows() -> None:
    manifests = render("-f", str(CHART / "ci/production-values.yaml"))
    config = named(manifests, "ConfigMap", "-config")["data"]
    api = named(manifests, "Deployment", "-api")
    surge = api["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert surge.endswith("%")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    workers = int(next(e["value"] for e in container["env"] if e["name"] == "UVICORN_WORKERS"))
    api_pods = math.ceil(_hpa_max(manifests, "-api") * (1 + int(surge[:-1]) / 100))
    processes = api_pods * workers + _hpa_max(manifests, "-worker")
    per_process = int(config["MONGO_MAX_POOL_SIZE"]) + MONITORING_CONNECTIONS

    assert processes * per_process <= SERVER_CONNECTION_LIMIT, (processes, per_process)
    # The pods the model sized: 2 workers, a CPU request of 1 core, the HPA at 70 % of it.
    assert workers == 2
    assert container["resources"]["requests"]["cpu"] == "1"
    metrics = named(manifests, "HorizontalPodAutoscaler", "-api")["spec"]["metrics"]
    cpu = next(m["resource"] for m in metrics if m["resource"]["name"] == "cpu")
    assert cpu["target"]["averageUtilization"] == 70
