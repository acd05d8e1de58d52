"""The ingestion worker seen from the API: a pending source and /readyz say when no worker runs,
and a worker survives Redis losing its data."""

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Services, StartApi
from tests.support.api import Account, create_chatbot, sign_up, wait_ready
from tests.support.processes import IngestionWorker, RedisServer, poll_until

NO_WORKER = "Waiting for an ingestion worker"


def _env(services: Services, redis_url: str | None = None) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": redis_url or services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        # A stream of this test's own: no other test's worker reads it.
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }


def _add_text(client: httpx.Client, owner: Account, bot: str, text: str) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{bot}/sources/text",
        json={"title": "Opening hours", "text": text},
        headers=owner.headers,
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _ingestion_check(client: httpx.Client) -> str:
    check: str = client.get("/readyz").json()["checks"]["ingestion"]
    return check


def test_a_pending_source_and_readyz_say_that_no_worker_runs_until_one_does(
    start_api: StartApi, services: Services, tmp_path: Path
) -> None:
    env = _env(services)
    api = start_api(env)
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = _add_text(client, owner, bot, "The shop opens at nine.")
        assert source["status"] == "pending"
        assert NO_WORKER in source["notice"]
        listed = client.get(f"/api/chatbots/{bot}/sources", headers=owner.headers).json()
        assert NO_WORKER in listed[0]["notice"]
        readiness = client.get("/readyz")
        assert readiness.status_code == 200  # a missing worker does not take the API out
        assert readiness.json()["checks"]["ingestion"].startswith("no worker seen for 30 s")

        with IngestionWorker(tmp_path, api.env):
            ready = wait_ready(client, owner, bot, source["id"])
            assert ready["status"] == "ready"
            assert ready["notice"] is None
            assert poll_until(lambda: _ingestion_check(client), lambda c: c == "ok", 10) == "ok"
        # A worker that stops says goodbye: the API knows at once, not after 30 s.
        assert _ingestion_check(client).startswith("no worker seen")


def test_without_redis_readyz_says_ingestion_runs_in_process(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client() as client:
        assert _ingestion_check(client) == "in-process (no REDIS_URL)"


def test_the_worker_recreates_its_consumer_group_when_redis_loses_its_data(
    start_api: StartApi, services: Services, tmp_path: Path
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    with RedisServer(redis_dir) as redis_server:  # no persistence: a restart loses everything
        env = _env(services, redis_server.url)
        api = start_api(env)
        api.wait_ready()
        with api.client() as client, IngestionWorker(tmp_path, api.env) as worker:
            owner = sign_up(client)
            bot = create_chatbot(client, owner)["id"]
            before = _add_text(client, owner, bot, "The shop opens at nine.")
            assert wait_ready(client, owner, bot, before["id"])["status"] == "ready"

            redis_server.stop()
            redis_server.start()
            poll_until(lambda: client.get("/readyz").status_code, lambda s: s == 200, 20)
            after = _add_text(client, owner, bot, "The shop closes at six.")
            assert wait_ready(client, owner, bot, after["id"])["status"] == "ready"
        assert "creating it again" in worker.output()


def test_sources_whose_jobs_vanished_with_redis_are_queued_again_and_end_ready(
    start_api: StartApi, services: Services, tmp_path: Path
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    with RedisServer(redis_dir) as redis_server:  # no persistence: a restart loses everything
        env = {
            **_env(services, redis_server.url),
            "INGEST_JOB_TIMEOUT_SECONDS": "5",
            "INGEST_REQUEUE_AFTER_SECONDS": "6",
            "INGEST_REQUEUE_CHECK_SECONDS": "0.5",
        }
        api = start_api(env)
        api.wait_ready()
        with api.client() as client:
            owner = sign_up(client)
            bot = create_chatbot(client, owner)["id"]
            # Queued while no worker runs; then Redis loses the stream and every job in it.
            texts = ["The shop opens at nine.", "The shop closes at six.", "Parking is free."]
            sources = [_add_text(client, owner, bot, text)["id"] for text in texts]
            redis_server.stop()
            redis_server.start()
            poll_until(lambda: client.get("/readyz").status_code, lambda s: s == 200, 20)

            with IngestionWorker(tmp_path, api.env) as worker:
                for source in sources:
                    assert wait_ready(client, owner, bot, source)["status"] == "ready"
            assert worker.output().count("without a job; queued again") == len(sources)
