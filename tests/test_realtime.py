"""WebSockets at /api/ws through real gunicorn workers, Redis and the ingestion worker."""

import base64
import contextlib
import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import Services, StartApi
from tests.support.api import Account, create_chatbot, sign_up
from tests.support.processes import ApiServer, IngestionWorker


def ws_url(api: ApiServer, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"ws://127.0.0.1:{api.port}/api/ws?{query}"


def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def receive_until(ws: ClientConnection, accept: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = receive(ws, max(0.1, deadline - time.monotonic()))
        if accept(message):
            return message


def close_code(ws: ClientConnection, timeout: float = 10) -> int:
    """The code the server closed with (frames before the close are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            if closed.rcvd is None:
                raise AssertionError("closed without a close frame") from closed
            return closed.rcvd.code
    raise AssertionError("the server did not close the connection")


@pytest.fixture
def owner_on(start_api: StartApi) -> Any:
    def make(api: ApiServer) -> Account:
        with api.client() as client:
            return sign_up(client)

    return make


def test_events_reach_sockets_on_both_workers_from_another_worker_and_the_ingestion_worker(
    start_api: StartApi, services: Services, tmp_path: Path
) -> None:
    stream = f"test:ingest:{uuid.uuid4().hex[:8]}"
    api = start_api({"INGEST_STREAM": stream}, workers=2)
    api.wait_ready()
    ingestion = IngestionWorker(tmp_path, api.env)
    ingestion.start()
    sockets: list[ClientConnection] = []
    stack = contextlib.ExitStack()
    try:
        with api.client() as client:
            owner = sign_up(client)
            held: dict[int, int] = {}
            for _ in range(60):  # new connections until each worker holds two
                ws = stack.enter_context(connect(ws_url(api, token=owner.access_token)))
                worker = receive(ws)["worker"]
                if held.get(worker, 0) >= 2:  # the user's connections are capped: keep few
                    ws.close()
                    continue
                held[worker] = held.get(worker, 0) + 1
                sockets.append(ws)
                if len(held) == 2 and min(held.values()) == 2:
                    break
            assert sorted(held.values()) == [2, 2]
            for ws in sockets:
                ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
                assert receive(ws) == {"type": "subscribed", "topic": "notifications"}

            bot = create_chatbot(client, owner)["id"]
            client.post(
                f"/api/chatbots/{bot}/chat", json={"message": "hello"}, headers=owner.headers
            )
            for ws in sockets:
                event = receive_until(ws, lambda m: m["type"] == "event")
                assert event["data"]["type"] == "conversation.started"
                assert event["data"]["chatbot_id"] == bot

            source = client.post(
                f"/api/chatbots/{bot}/sources/text",
                json={"title": "Hours", "text": "Open daily from nine."},
                headers=owner.headers,
            ).json()
            for ws in sockets:
                ready = receive_until(
                    ws, lambda m: m["type"] == "event" and m["data"].get("status") == "ready"
                )
                assert ready["data"]["source_id"] == source["id"]
                assert ready["data"]["percent"] == 100
            metrics = client.get("/metrics").text
            assert "botsmith_websocket_connections" in metrics
            assert "botsmith_websocket_fanout_latency_seconds_count" in metrics
    finally:
        stack.close()
        ingestion.stop()


def test_other_owners_do_not_receive_my_events(start_api: StartApi, owner_on: Any) -> None:
    api = start_api()
    me, other = owner_on(api), owner_on(api)
    with connect(ws_url(api, token=other.access_token)) as theirs:
        receive(theirs)
        theirs.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
        receive(theirs)
        with api.client() as client:
            bot = create_chatbot(client, me)["id"]
            client.post(f"/api/chatbots/{bot}/chat", json={"message": "hi"}, headers=me.headers)
        theirs.send(json.dumps({"type": "ping"}))
        assert receive(theirs) == {"type": "pong"}  # nothing arrived before the pong


def test_authentication_failures_close_with_1008(start_api: StartApi, owner_on: Any) -> None:
    api = start_api()
    owner = owner_on(api)
    with connect(ws_url(api)) as anonymous:
        assert close_code(anonymous) == 1008
    with connect(ws_url(api, token="not-a-token")) as forged:
        assert close_code(forged) == 1008
    with api.client() as client:
        private = create_chatbot(client, owner)["id"]
    with connect(ws_url(api, chatbot_id=private, session_id="visitor-1")) as visitor:
        assert close_code(visitor) == 1008


def test_the_connection_caps_close_with_1013_and_1008(start_api: StartApi, owner_on: Any) -> None:
    api = start_api({"WEBSOCKET_MAX_CONNECTIONS": "2", "WEBSOCKET_MAX_PER_USER": "1"})
    first, second, third = owner_on(api), owner_on(api), owner_on(api)
    with (
        connect(ws_url(api, token=first.access_token)) as a,
        connect(ws_url(api, token=second.access_token)) as b,
    ):
        receive(a)
        receive(b)
        with connect(ws_url(api, token=third.access_token)) as over:
            assert close_code(over) == 1013
        with connect(ws_url(api, token=first.access_token)) as again:
            assert close_code(again) in (1008, 1013)
    with (
        connect(ws_url(api, token=first.access_token)) as one,
        connect(ws_url(api, token=first.access_token)) as two,
    ):
        receive(one)
        assert close_code(two) == 1008


def test_malformed_frames_get_an_error_and_the_connection_survives(
    start_api: StartApi, owner_on: Any
) -> None:
    api = start_api({"WEBSOCKET_MAX_MESSAGE_BYTES": "2048"})
    owner = owner_on(api)
    with connect(ws_url(api, token=owner.access_token)) as ws:
        receive(ws)
        for bad in (
            "not json",
            "[1, 2]",
            json.dumps({"type": "dance"}),
            json.dumps({"type": "subscribe", "topic": "secrets"}),
        ):
            ws.send(bad)
            assert receive(ws)["type"] == "error"
        ws.send(json.dumps({"type": "chat", "id": "c1", "chatbot_id": "nope", "message": "hi"}))
        assert receive(ws) == {
            "type": "chat",
            "id": "c1",
            "event": "error",
            "data": {"message": "no such chatbot"},
        }
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
        ws.send("x" * 4096)
        assert close_code(ws) == 1009


def test_a_client_that_stops_answering_pings_is_closed(start_api: StartApi, owner_on: Any) -> None:
    api = start_api({"WEBSOCKET_PING_INTERVAL": "1", "WEBSOCKET_PING_TIMEOUT": "1"})
    owner = owner_on(api)
    # A raw socket: it completes the handshake and then never answers a ping.
    raw = socket.create_connection(("127.0.0.1", api.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /api/ws?token={owner.access_token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    raw.settimeout(1)
    started, received = time.monotonic(), b""
    try:
        while time.monotonic() - started < 10:
            try:
                chunk = raw.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
    finally:
        raw.close()
    elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 101")
    assert elapsed < 8, "the server kept a silent client"
    assert b"\x89" in received, "the server pinged"


def test_graceful_shutdown_closes_sockets_with_1001(start_api: StartApi, owner_on: Any) -> None:
    api = start_api()
    owner = owner_on(api)
    with connect(ws_url(api, token=owner.access_token)) as ws:
        receive(ws)
        api.signal(signal.SIGTERM)
        assert close_code(ws) == 1001
    assert api.wait(timeout=15) == 0


def test_without_redis_events_and_chat_work_within_the_process(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(
            client, owner, visibility="public", allowed_origins=["https://shop.example.com"]
        )["id"]
        with connect(ws_url(api, token=owner.access_token)) as ws:
            receive(ws)
            ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
            receive(ws)
            client.post(
                f"/api/chatbots/{bot}/sources/text",
                json={"title": "Returns", "text": "Returns are free within thirty days."},
                headers=owner.headers,
            )
            ready = receive_until(
                ws, lambda m: m["type"] == "event" and m["data"].get("status") == "ready"
            )
            assert ready["data"]["chatbot_id"] == bot

    with connect(
        ws_url(api, chatbot_id=bot, session_id="visitor-7"),
        origin=Origin("https://shop.example.com"),
    ) as visitor:
        assert receive(visitor)["visitor"] is True
        visitor.send(
            json.dumps(
                {
                    "type": "chat",
                    "id": "v1",
                    "chatbot_id": bot,
                    "message": "Are returns free?",
                    "session_id": "visitor-7",
                }
            )
        )
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] not in ("end", "error"):
            events.append(receive_until(visitor, lambda m: m["type"] == "chat"))
        assert events[0]["event"] == "start"
        assert events[-1]["event"] == "end"
        assert "thirty days" in "".join(e["data"]["text"] for e in events if e["event"] == "token")
        visitor.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
        assert receive(visitor)["type"] == "error", "visitors get no owner notifications"


def test_status_is_pushed_to_subscribers(start_api: StartApi, owner_on: Any) -> None:
    api = start_api({"WEBSOCKET_STATUS_INTERVAL": "1"})
    owner = owner_on(api)
    with connect(ws_url(api, token=owner.access_token)) as ws:
        receive(ws)
        ws.send(json.dumps({"type": "subscribe", "topic": "status"}))
        assert receive(ws)["type"] == "subscribed"
        first = receive_until(ws, lambda m: m["type"] == "status")
        assert set(first["data"]) == {"status", "database", "connection_pool", "scalability"}
        receive_until(ws, lambda m: m["type"] == "status", timeout=5)  # again, at the interval


def test_tokens_in_the_url_do_not_reach_the_log(start_api: StartApi, owner_on: Any) -> None:
    api = start_api({"LOG_LEVEL": "info"})
    owner = owner_on(api)
    with connect(ws_url(api, token=owner.access_token)) as ws:
        receive(ws)
    assert owner.access_token not in api.output()
    assert "token=***" in api.output()
