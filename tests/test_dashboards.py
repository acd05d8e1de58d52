"""The chart's dashboard and alert rules against a real Prometheus scraping a running API and an
ingestion worker: every expression parses (promtool) and returns data for the metrics the
service exports."""

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.sync.client import connect

from tests.conftest import Services
from tests.support.api import add_text, create_chatbot, sign_up
from tests.support.chart import MONITORING_APIS, named, render
from tests.support.processes import (
    ApiServer,
    IngestionWorker,
    ListeningProcess,
    free_port,
    poll_until,
    wait_for_port,
)

RATE_WINDOW = "1m"  # stands in for Grafana's $__rate_interval at a 1 s scrape interval


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True)


class Prometheus(ListeningProcess):
    def __init__(self, workdir: Path, targets: dict[str, str], rule_file: Path) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rule_file)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        argv = [
            "prometheus",
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        super().__init__(argv, workdir / "prometheus.log", {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expression: str) -> list[dict[str, Any]]:
        result = promtool("query", "instant", "-o", "json", self.url, expression)
        assert result.returncode == 0, f"{expression}\n{result.stderr}"
        series: list[dict[str, Any]] = json.loads(result.stdout or "[]")
        return series


@pytest.fixture(scope="module")
def rule_groups() -> list[dict[str, Any]]:
    manifests = render("--set", "metrics.prometheusRule.enabled=true", api_versions=MONITORING_APIS)
    groups: list[dict[str, Any]] = named(manifests, "PrometheusRule", "")["spec"]["groups"]
    return groups


@pytest.fixture(scope="module")
def dashboard_expressions() -> list[str]:
    dashboard = json.loads(named(render(), "ConfigMap", "-dashboard")["data"]["botsmith.json"])
    return [
        target["expr"].replace("$__rate_interval", RATE_WINDOW)
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def exercise(api: ApiServer) -> None:
    """Traffic that touches every area the dashboard shows: requests, cache hits and misses,
    rate-limit decisions, MongoDB, a WebSocket exchange and an ingestion job."""
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)
        for _ in range(3):
            assert client.get(f"/api/chatbots/{bot['id']}", headers=owner.headers).is_success
        client.get("/api/no-such-route")
        source = add_text(client, owner, bot["id"], "Hours", "We open at nine every weekday.")
        assert source["status"] == "ready", source
    token = owner.headers["Authorization"].removeprefix("Bearer ")
    with connect(f"ws://127.0.0.1:{api.port}/api/ws?token={token}") as ws:
        ws.send(json.dumps({"type": "subscribe", "topic": "status"}))
        ws.recv(timeout=10)


@pytest.fixture(scope="module")
def prometheus(
    services: Services,
    tmp_path_factory: pytest.TempPathFactory,
    rule_groups: list[dict[str, Any]],
) -> Iterator[Prometheus]:
    assert shutil.which("prometheus"), "Debian's prometheus package is installed by bootstrap"
    workdir = tmp_path_factory.mktemp("prometheus")
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }
    with (
        ApiServer(workdir / "api", env, workers=2) as api,
        IngestionWorker(workdir, api.env) as worker,
    ):
        api.wait_ready()
        wait_for_port(worker.metrics_port)
        rule_file = workdir / "rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": rule_groups}))
        targets = {
            "botsmith-api": f"127.0.0.1:{api.port}",
            "botsmith-worker": f"127.0.0.1:{worker.metrics_port}",
        }
        with Prometheus(workdir, targets, rule_file) as server:
            exercise(api)
            # Enough scrapes after the traffic for rate() windows and the recording rules.
            poll_until(
                lambda: server.query('count(up{job=~"botsmith-.*"} == 1)'),
                lambda result: bool(result) and result[0]["value"][1] == "2",
                30,
            )
            poll_until(lambda: server.query("botsmith:http_requests:rate5m"), lambda r: bool(r), 30)
            yield server


def test_promtool_accepts_the_rendered_rules(
    rule_groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": rule_groups}))
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {rule["alert"] for group in rule_groups for rule in group["rules"] if "alert" in rule}
    assert alerts == {
        "BotSmithHighErrorRatio",
        "BotSmithHighLatency",
        "BotSmithMongoPoolSaturated",
        "BotSmithRedisFailOpen",
        "BotSmithIngestionBacklog",
    }


def test_every_dashboard_expression_returns_data(
    prometheus: Prometheus, dashboard_expressions: list[str]
) -> None:
    empty = [expr for expr in dashboard_expressions if not prometheus.query(expr)]
    assert empty == []


def test_every_recording_rule_and_every_series_an_alert_reads_returns_data(
    prometheus: Prometheus, rule_groups: list[dict[str, Any]]
) -> None:
    rules = [rule for group in rule_groups for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        if "alert" in rule:
            read = set(re.findall(r"botsmith:[a-z0-9_:]+", rule["expr"]))
            assert read, f"{rule['alert']} should compare recorded series"
            assert read <= recorded, rule["alert"]
    empty = [name for name in sorted(recorded) if not prometheus.query(name)]
    assert empty == []


def test_the_alerts_are_quiet_on_a_healthy_service(prometheus: Prometheus) -> None:
    assert prometheus.query('ALERTS{alertname=~"BotSmith.*"}') == []
