"""The API under real gunicorn: workers, graceful shutdown, the metrics directory."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import StartApi
from tests.support.processes import poll_until

SLOW_APP = "tests.support.slow_app:create_app()"


def test_two_workers_answer_over_tcp(start_api: StartApi) -> None:
    api = start_api(workers=2)
    assert len(api.worker_pids()) == 2
    with api.client() as client:
        statuses = {client.get("/api/health").status_code for _ in range(20)}
    assert statuses == {200}


def test_sigterm_lets_the_in_flight_request_finish_then_exits_cleanly(start_api: StartApi) -> None:
    api = start_api(app=SLOW_APP, workers=2)
    with ThreadPoolExecutor(1) as pool, api.client() as client:
        in_flight = pool.submit(client.get, "/test/slow", params={"seconds": 2})
        time.sleep(0.5)
        api.signal(signal.SIGTERM)
        response = in_flight.result(timeout=15)
        exit_code = api.wait(timeout=15)
    assert response.status_code == 200
    assert response.json() == {"slept": 2.0}
    assert exit_code == 0
    assert "Shutting down: Master" in api.output()


def test_new_connections_are_refused_once_shutdown_begins(start_api: StartApi) -> None:
    api = start_api(app=SLOW_APP)
    with ThreadPoolExecutor(1) as pool, api.client() as client:
        in_flight = pool.submit(client.get, "/test/slow", params={"seconds": 2})
        time.sleep(0.5)
        api.signal(signal.SIGTERM)
        refused = poll_until(
            lambda: _connect_error(api.base_url), lambda refused: refused, timeout=5
        )
        assert refused
        assert in_flight.result(timeout=15).status_code == 200


def _connect_error(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/livez", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_stale_metrics_files_are_wiped_at_start(start_api: StartApi) -> None:
    api = start_api(workers=2)
    stale = api.metrics_dir / "counter_999999.db"
    api.stop()
    stale.write_bytes(b"left over by an earlier run")
    assert os.path.exists(stale)
    api.start()
    assert not stale.exists()
    with api.client() as client:
        assert client.get("/metrics").status_code == 200
