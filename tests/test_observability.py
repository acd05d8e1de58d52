"""Metrics across gunicorn workers, checked by promtool; traces with MongoDB and Redis spans."""

import asyncio
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from app.core.config import Settings
from app.main import create_app
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import Services, StartApi
from tests.support.api import PASSWORD, unique_email
from tests.support.metrics import scrape, value
from tests.support.processes import TEST_JWT_SECRET


def test_metrics_sum_the_requests_of_both_workers(start_api: StartApi) -> None:
    api = start_api(workers=2)
    for _ in range(40):
        assert httpx.get(f"{api.base_url}/api/health").status_code == 200
    with api.client() as client:
        samples = scrape(client)
    served = value(
        samples,
        "botsmith_http_requests_total",
        method="GET",
        route="/api/health",
        status_class="2xx",
    )
    assert served == 40
    histogram_count = value(
        samples, "botsmith_http_request_duration_seconds_count", route="/api/health"
    )
    assert histogram_count == 40
    assert len([f for f in api.metrics_dir.iterdir() if f.name.startswith("counter_")]) == 2


def test_metrics_label_routes_by_template_never_by_raw_path(start_api: StartApi) -> None:
    api = start_api()
    with api.client() as client:
        client.get("/api/chatbots/abc123")
        client.get("/api/chatbots/def456")
        client.get("/no/such/path/9f8e7d")
        samples = scrape(client)
    routes = {
        dict(labels).get("route")
        for (name, labels) in samples
        if name.startswith("botsmith_http_requests")
    }
    assert "/api/chatbots/{chatbot_id}" in routes
    assert "unmatched" in routes
    assert not any(route and ("abc123" in route or "9f8e7d" in route) for route in routes)


def test_promtool_accepts_the_exposition(start_api: StartApi) -> None:
    api = start_api(workers=2)
    with api.client() as client:
        client.get("/api/health")
        client.get("/api/users/me")
        exposition = client.get("/metrics").text
    for family in (
        "botsmith_http_requests_total",
        "botsmith_http_request_duration_seconds_bucket",
        "botsmith_http_requests_in_flight",
        "botsmith_rate_limit_decisions_total",
        "botsmith_mongo_pool_connections",
        "botsmith_mongo_command_duration_seconds_bucket",
    ):
        assert family in exposition
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


@pytest.fixture
async def traced(
    services: Services, db_name: str
) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    settings = Settings(
        mongo_url=services.mongo_url,
        redis_url=services.redis_url,
        db_name=db_name,
        rate_limit_enabled=False,
        jwt_secret=TEST_JWT_SECRET,
    )
    app = create_app(settings, span_exporter=exporter)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if (await app.container.health.readiness()).status == "ready":
                break
            await asyncio.sleep(0.1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://botsmith.test"
        ) as client:
            yield client, exporter


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


@pytest.mark.anyio
async def test_a_request_span_has_mongodb_and_redis_child_spans(
    traced: tuple[httpx.AsyncClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    email = unique_email()
    await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    tokens = (
        await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    exporter.clear()

    response = await client.get(
        "/api/users/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "X-Request-ID": "trace-me"},
    )
    assert response.status_code == 200

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    server = next(span for span in spans if span.name == "GET /api/users/me")
    assert server.attributes is not None
    assert server.attributes["botsmith.request_id"] == "trace-me"
    mongo = [
        span for span in spans if span.attributes and span.attributes.get("db.system") == "mongodb"
    ]
    redis = [
        span for span in spans if span.attributes and span.attributes.get("db.system") == "redis"
    ]
    assert mongo, "no MongoDB span"
    assert redis, "no Redis span"
    for child in mongo + redis:
        assert child.context.trace_id == server.context.trace_id
        assert server in _ancestors(child, by_id)
