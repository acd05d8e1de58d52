"""METRICS_PORT: /metrics of every gunicorn worker on a port of its own, not the public one."""

import httpx

from tests.conftest import StartApi
from tests.support.metrics import scrape, value
from tests.support.processes import free_port


def test_a_metrics_port_serves_every_workers_metrics_and_the_app_port_hides_them(
    start_api: StartApi,
) -> None:
    metrics_port = free_port()
    api = start_api({"METRICS_PORT": str(metrics_port)}, workers=2)
    for _ in range(30):
        assert httpx.get(f"{api.base_url}/api/health").status_code == 200

    with api.client() as client:
        hidden = client.get("/metrics")
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")

    with httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10) as metrics:
        samples = scrape(metrics)
    served = value(
        samples,
        "botsmith_http_requests_total",
        method="GET",
        route="/api/health",
        status_class="2xx",
    )
    assert served == 30
    # The /metrics request that was refused on the app port is counted as such.
    assert value(samples, "botsmith_http_requests_total", status_class="4xx") >= 1
