"""Health, liveness and readiness against real FerretDB and Redis, through the running API."""

import asyncio
import logging

import httpx
import pytest
from app.core.config import Settings
from app.core.logging import setup_logging
from app.health.service import CachedProbe
from pymongo.errors import AutoReconnect
from pymongo.logger import _log_client_error

from tests.conftest import StartApi
from tests.support.api import create_chatbot, sign_up
from tests.support.metrics import scrape, value
from tests.support.processes import TEST_JWT_SECRET, FerretDB, free_port, poll_until

# No test here runs an ingestion worker: readiness reports that, and stays ready for it.
NO_WORKER = "no worker seen for 30 s: sources stay pending"


def test_health_has_exactly_the_seed_shape_with_the_configured_values(start_api: StartApi) -> None:
    api = start_api(
        {
            "MONGO_MAX_POOL_SIZE": "50",
            "MONGO_MIN_POOL_SIZE": "5",
            "ASYNC_CONCURRENCY_LIMIT": "700",
            "RATE_LIMIT_PER_MINUTE": "120",
        }
    )
    with api.client() as client:
        response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "running",
        "database": "healthy",
        "connection_pool": {"status": "healthy", "max_pool_size": 50, "min_pool_size": 5},
        "scalability": {
            "max_pool_size": 50,
            "concurrent_tasks_limit": 700,
            "rate_limit_per_minute": 120,
        },
    }


def test_health_says_unhealthy_when_nothing_listens_at_the_database_address(
    start_api: StartApi,
) -> None:
    api = start_api({"MONGO_URL": f"mongodb://127.0.0.1:{free_port()}/"})
    with api.client() as client:
        body = client.get("/api/health").json()
        ready = client.get("/readyz")
        live = client.get("/livez")
    assert body["status"] == "degraded"
    assert body["database"] == "unhealthy"
    assert body["connection_pool"]["status"] == "unhealthy"
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "mongodb": "unreachable",
        "indexes": "pending",
        "redis": "ok",
        "ingestion": NO_WORKER,
    }
    assert live.status_code == 200


def test_readyz_follows_the_database_going_away_and_coming_back_without_a_restart(
    start_api: StartApi, private_ferretdb: FerretDB
) -> None:
    api = start_api({"MONGO_URL": private_ferretdb.url})
    api.wait_ready()
    with api.client() as client:
        private_ferretdb.stop()
        down = poll_until(lambda: client.get("/readyz"), lambda r: r.status_code == 503, 8)
        assert down.json() == {
            "status": "not_ready",
            "checks": {
                "mongodb": "unreachable",
                "indexes": "ok",
                "redis": "ok",
                "ingestion": NO_WORKER,
            },
        }
        assert client.get("/livez").status_code == 200

        private_ferretdb.start()
        up = poll_until(lambda: client.get("/readyz"), lambda r: r.status_code == 200, 20)
        assert up.json()["status"] == "ready"
        assert client.get("/api/health").json()["database"] == "healthy"


def test_readyz_is_503_when_redis_is_configured_but_unreachable(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with api.client() as client:
        response = poll_until(
            lambda: client.get("/readyz"), lambda r: r.json()["checks"]["indexes"] == "ok", 10
        )
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "mongodb": "ok",
        "indexes": "ok",
        "redis": "unreachable",
        "ingestion": "unknown (redis unreachable)",
    }


def test_without_redis_url_readiness_reports_the_in_process_fallback(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client() as client:
        response = client.get("/readyz")
    assert response.json()["checks"]["redis"] == "in-process fallback (REDIS_URL not set)"


def test_an_unknown_path_is_a_problem_json_404(start_api: StartApi) -> None:
    api = start_api()
    response = httpx.get(f"{api.base_url}/api/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "instance": "/api/no-such-thing",
    }


def test_requests_needing_the_database_get_503_while_it_is_gone_and_recover_without_a_restart(
    start_api: StartApi, private_ferretdb: FerretDB
) -> None:
    api = start_api(
        {"MONGO_URL": private_ferretdb.url, "MONGO_SERVER_SELECTION_TIMEOUT_MS": "1000"}
    )
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        private_ferretdb.stop()
        refused = [
            client.get("/api/chatbots", headers=owner.headers),
            client.post("/api/chatbots", json={"name": "Down"}, headers=owner.headers),
            client.post(
                f"/api/chatbots/{bot}/chat", json={"message": "Hello?"}, headers=owner.headers
            ),
        ]
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "5"
            assert response.json()["detail"] == "The database cannot be reached; try again shortly"
        assert value(scrape(client), "botsmith_database_unavailable_total") >= len(refused)

        private_ferretdb.start()
        listed = poll_until(
            lambda: client.get("/api/chatbots", headers=owner.headers),
            lambda r: r.status_code == 200,
            20,
        )
        assert [item["id"] for item in listed.json()["items"]] == [bot]
    log = api.output()
    # One warning per outage and process, no traceback per request.
    assert "Traceback" not in log
    assert 1 <= log.count("database unavailable, answering 503") <= 2


def test_a_failed_driver_background_task_is_one_warning_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PyMongo's pool maintenance runs into an outage with a traceback per attempt; the service
    logs it as one line (the race the outage test above may or may not hit)."""
    setup_logging(Settings(jwt_secret=TEST_JWT_SECRET))
    with caplog.at_level(logging.WARNING, logger="pymongo.client"):
        try:
            raise AutoReconnect("127.0.0.1:1: [Errno 111] Connect call failed")
        except AutoReconnect:
            _log_client_error()
    (record,) = [r for r in caplog.records if r.name == "pymongo.client"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert record.getMessage() == (
        "MongoDB background task failed: 127.0.0.1:1: [Errno 111] Connect call failed"
    )


@pytest.mark.anyio
async def test_a_probe_past_its_ttl_answers_at_once_while_one_run_refreshes_it() -> None:
    runs = 0
    refresh = asyncio.Event()

    async def check() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await refresh.wait()

    probe = CachedProbe(check, timeout=60, ttl=0)
    first = await asyncio.gather(*(probe.healthy() for _ in range(100)))
    assert first == [True] * 100
    assert runs == 1  # the first callers shared the first run
    # Past the ttl, with the refresh still running: nobody waits for it, nobody queues.
    callers = [asyncio.create_task(probe.healthy()) for _ in range(500)]
    done, pending = await asyncio.wait(callers, timeout=30)
    assert not pending
    assert all(task.result() for task in done)
    assert runs == 2
    refresh.set()
