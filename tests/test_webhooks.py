"""Outbound webhooks against a receiver on the loopback interface: signed deliveries sent by
`botsmith worker` (or the API without Redis), retries with growing waits, the same webhook-id on
every attempt and redelivery, endpoints refused at registration, and the delivery log."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import StartApi
from tests.support.api import Account, add_text, assert_problem, create_chatbot, sign_up
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.processes import ApiServer, IngestionWorker, poll_until

ALL_EVENTS = [
    "conversation.created",
    "message.created",
    "feedback.created",
    "source.ready",
    "source.failed",
]
# Fast retries and an idle loop that looks for work often, so a test waits seconds, not hours.
FAST = {
    "INGEST_URL_ALLOWLIST": "127.0.0.1",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOK_POLL_SECONDS": "0.1",
}


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The README's verification recipe: returns the event, or raises when the message was not
    signed with this secret or is older than five minutes."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    presented = headers["webhook-signature"].split()
    if not any(hmac.compare_digest(expected, candidate) for candidate in presented):
        raise ValueError("bad signature")
    if abs(time.time() - int(timestamp)) > 300:
        raise ValueError("too old")
    event: dict[str, Any] = json.loads(body)
    return event


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent and answers `failures`
    times with 500 before it answers 200."""

    def __init__(self, failures: int = 0) -> None:
        self.requests: list[Request] = []
        self.failures = failures
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Request(headers, body))
                    failing = receiver.failures > 0
                    receiver.failures -= 1
                self.send_body(500 if failing else 200, "text/plain", b"x" * 100)

        self._server = LoopbackServer(Handler)
        self.url = f"http://127.0.0.1:{self._server.port}/hooks"

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def of_type(self, event_type: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.event["type"] == event_type]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 30) -> list[Request]:
        return poll_until(lambda: self.of_type(event_type), lambda r: len(r) >= count, timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def register(
    client: httpx.Client, owner: Account, bot: str, url: str, events: list[str]
) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{bot}/webhooks", json={"url": url, "events": events}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(
    client: httpx.Client, owner: Account, bot: str, endpoint: str
) -> list[dict[str, Any]]:
    response = client.get(
        f"/api/chatbots/{bot}/webhooks/{endpoint}/deliveries", headers=owner.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def start_with_worker(start_api: StartApi, tmp_path: Path, env: dict[str, str]) -> ApiServer:
    # A stream of its own: the worker takes no other test's ingestion jobs.
    api = start_api({**env, "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}"})
    api.wait_ready()
    return api


def test_a_chat_feedback_and_sources_reach_the_receiver_signed(
    start_api: StartApi, tmp_path: Path, receiver: Receiver
) -> None:
    api = start_with_worker(start_api, tmp_path, FAST)
    with api.client() as client, IngestionWorker(tmp_path / "worker", api.env):
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        endpoint = register(client, owner, bot, receiver.url, ALL_EVENTS)
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")

        add_text(client, owner, bot, "Hours", "The shop is open daily from nine to five.")
        chat = client.post(
            f"/api/chatbots/{bot}/chat",
            json={"message": "When is the shop open?"},
            headers=owner.headers,
        )
        assert chat.status_code == 200, chat.text
        answer = chat.json()
        rated = client.post(
            f"/api/chatbots/{bot}/messages/{answer['message_id']}/feedback",
            json={"rating": "up", "comment": "thanks"},
            headers=owner.headers,
        )
        assert rated.status_code == 200, rated.text
        broken = client.post(
            f"/api/chatbots/{bot}/sources/file",
            files={"file": ("broken.pdf", b"%PDF-1.4 not really a pdf", "application/pdf")},
            headers=owner.headers,
        )
        assert broken.status_code == 202, broken.text

        [created] = receiver.wait_for("conversation.created")
        messages = receiver.wait_for("message.created", 2)
        [feedback] = receiver.wait_for("feedback.created")
        [ready] = receiver.wait_for("source.ready")
        [failed] = receiver.wait_for("source.failed")

        for request in [created, *messages, feedback, ready, failed]:
            event = verify(secret, request.headers, request.body)
            assert request.headers["webhook-id"] == event["id"]
            assert request.headers["content-type"] == "application/json"
            assert event["chatbot_id"] == bot
            assert set(event) == {"id", "type", "created_at", "chatbot_id", "data"}
        with pytest.raises(ValueError, match="bad signature"):
            verify("whsec_" + base64.b64encode(b"k" * 32).decode(), created.headers, created.body)

        conversation = created.event["data"]["conversation"]
        assert conversation["id"] == answer["conversation_id"]
        by_role = {m.event["data"]["message"]["role"]: m.event["data"]["message"] for m in messages}
        assert by_role["user"]["content"] == "When is the shop open?"
        assert by_role["user"]["conversation_id"] == answer["conversation_id"]
        assert by_role["assistant"]["id"] == answer["message_id"]
        assert by_role["assistant"]["content"] == answer["answer"]
        rating = feedback.event["data"]["message"]
        assert (rating["id"], rating["feedback"]["rating"]) == (answer["message_id"], "up")
        assert ready.event["data"]["source"]["status"] == "ready"
        assert ready.event["data"]["source"]["title"] == "Hours"
        assert failed.event["data"]["source"]["id"] == broken.json()["id"]
        assert failed.event["data"]["source"]["error"]
        assert "file" not in failed.event["data"]["source"]

        log = poll_until(
            lambda: deliveries(client, owner, bot, endpoint["id"]),
            lambda items: len(items) == 6 and all(d["status"] == "delivered" for d in items),
            30,
        )
        for delivery in log:
            assert delivery["attempts"] == 1
            assert delivery["status_code"] == 200
            assert delivery["latency_ms"] >= 0
            assert delivery["delivered_at"] is not None
            assert delivery["next_attempt_at"] is None
            assert delivery["last_error"] is None
        assert {d["event_id"] for d in log} == {r.event["id"] for r in receiver.requests}


def test_a_failing_endpoint_is_retried_with_growing_waits_and_gets_the_event_once_it_recovers(
    start_api: StartApi, tmp_path: Path
) -> None:
    api = start_with_worker(start_api, tmp_path, FAST)
    with (
        Receiver(failures=3) as receiver,
        api.client() as client,
        IngestionWorker(tmp_path / "worker", api.env),
    ):
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        endpoint = register(client, owner, bot, receiver.url, ["conversation.created"])
        chat = client.post(
            f"/api/chatbots/{bot}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert chat.status_code == 200, chat.text

        [delivery] = poll_until(
            lambda: deliveries(client, owner, bot, endpoint["id"]),
            lambda items: len(items) == 1 and items[0]["status"] == "delivered",
            60,
        )
        requests = receiver.of_type("conversation.created")
        assert len(requests) == 4
        # Every attempt is the same message: same webhook-id, same body, each one signed.
        assert {r.headers["webhook-id"] for r in requests} == {delivery["event_id"]}
        assert {r.body for r in requests} == {requests[0].body}
        for request in requests:
            verify(endpoint["secret"], request.headers, request.body)

        assert delivery["attempts"] == 4
        attempts = delivery["attempt_log"]
        assert [a["status_code"] for a in attempts] == [500, 500, 500, 200]
        assert all(a["error"] == "answered 500" for a in attempts[:3])
        assert attempts[3]["error"] is None
        assert attempts[3]["retry_at"] is None
        at = [datetime.fromisoformat(a["at"]) for a in attempts]
        retry_at = [datetime.fromisoformat(a["retry_at"]) for a in attempts[:3]]
        waits = [(retry_at[i] - at[i]).total_seconds() for i in range(3)]
        assert waits[0] < waits[1] < waits[2], waits
        # No attempt was made before it was due.
        assert all(at[i + 1] >= retry_at[i] for i in range(3)), (at, retry_at)
        assert delivery["status_code"] == 200
        assert delivery["last_error"] is None

        endpoint_now = client.get(
            f"/api/chatbots/{bot}/webhooks/{endpoint['id']}", headers=owner.headers
        ).json()
        assert endpoint_now["enabled"] is True
        assert endpoint_now["failing_since"] is None


def test_an_endpoint_failing_for_the_whole_retry_period_is_disabled_and_its_owner_told(
    start_api: StartApi, tmp_path: Path
) -> None:
    # Retries for two seconds.
    env = {**FAST, "WEBHOOK_RETRY_HOURS": str(2 / 3600), "WEBHOOK_RETRY_BASE_SECONDS": "0.2"}
    api = start_with_worker(start_api, tmp_path, env)
    with (
        Receiver(failures=1000) as receiver,
        api.client() as client,
        IngestionWorker(tmp_path / "worker", api.env),
    ):
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        endpoint = register(client, owner, bot, receiver.url, ["conversation.created"])
        url = f"/api/chatbots/{bot}/webhooks/{endpoint['id']}"
        socket_url = f"ws://127.0.0.1:{api.port}/api/ws?token={owner.access_token}"
        with connect(socket_url) as ws:
            ws.recv(timeout=10)
            ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            chat = client.post(
                f"/api/chatbots/{bot}/chat", json={"message": "hi"}, headers=owner.headers
            )
            assert chat.status_code == 200, chat.text
            deadline = time.monotonic() + 30
            while True:
                message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message["type"] == "event" and message["data"]["type"] == "webhook.disabled":
                    break
        notice = message["data"]
        assert (notice["endpoint_id"], notice["chatbot_id"]) == (endpoint["id"], bot)
        assert "failed" in notice["reason"]

        disabled = client.get(url, headers=owner.headers).json()
        assert disabled["enabled"] is False
        assert disabled["disabled_reason"] == notice["reason"]
        [delivery] = deliveries(client, owner, bot, endpoint["id"])
        assert delivery["status"] == "failed"
        assert delivery["next_attempt_at"] is None
        assert delivery["attempts"] == len(receiver.requests) >= 2

        # A disabled endpoint gets no new events; enabled again, it does.
        client.post(f"/api/chatbots/{bot}/chat", json={"message": "again"}, headers=owner.headers)
        assert len(deliveries(client, owner, bot, endpoint["id"])) == 1
        enabled = client.patch(url, json={"enabled": True}, headers=owner.headers)
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["disabled_reason"] is None
        receiver.failures = 0
        client.post(f"/api/chatbots/{bot}/chat", json={"message": "third"}, headers=owner.headers)
        poll_until(
            lambda: deliveries(client, owner, bot, endpoint["id"]),
            lambda items: len(items) == 2 and items[0]["status"] == "delivered",
            30,
        )


def test_a_test_event_and_a_redelivery_reach_the_endpoint_with_the_same_webhook_id(
    start_api: StartApi, tmp_path: Path, receiver: Receiver
) -> None:
    api = start_with_worker(start_api, tmp_path, FAST)
    with api.client() as client, IngestionWorker(tmp_path / "worker", api.env):
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        endpoint = register(client, owner, bot, receiver.url, ["lead.created"])
        base = f"/api/chatbots/{bot}/webhooks/{endpoint['id']}"

        queued = client.post(f"{base}/test", headers=owner.headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["event_type"] == "webhook.test"
        assert queued.json()["status"] == "pending"
        [first] = receiver.wait_for("webhook.test")
        event = verify(endpoint["secret"], first.headers, first.body)
        assert event["id"] == queued.json()["event_id"]
        assert event["chatbot_id"] == bot
        poll_until(
            lambda: deliveries(client, owner, bot, endpoint["id"]),
            lambda items: items[0]["status"] == "delivered",
            30,
        )

        again = client.post(
            f"{base}/deliveries/{queued.json()['id']}/redeliver", headers=owner.headers
        )
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        first_again, second = receiver.wait_for("webhook.test", 2)
        assert first_again == first
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        assert second.body == first.body
        verify(endpoint["secret"], second.headers, second.body)
        [delivery] = poll_until(
            lambda: deliveries(client, owner, bot, endpoint["id"]),
            lambda items: items[0]["attempts"] == 2 and items[0]["status"] == "delivered",
            30,
        )
        assert delivery["id"] == queued.json()["id"]

        missing = client.post(f"{base}/deliveries/nope/redeliver", headers=owner.headers)
        assert_problem(missing, 404)
        assert_problem(
            client.post(f"/api/chatbots/{bot}/webhooks/nope/test", headers=owner.headers), 404
        )


def test_endpoints_on_private_addresses_or_plain_http_are_refused_at_registration(
    start_api: StartApi,
) -> None:
    api = start_api()  # no allowlist
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        hooks = f"/api/chatbots/{bot}/webhooks"
        for url in [
            "http://10.0.0.1/",
            "https://10.0.0.1/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://127.0.0.1:8443/",
            "https://[::1]/",
            "https://192.168.1.20/",
        ]:
            refused = client.post(
                hooks, json={"url": url, "events": ["message.created"]}, headers=owner.headers
            )
            problem = assert_problem(refused, 422)
            assert "refused" in problem["detail"], problem
        # A public address, but without TLS.
        plain = client.post(
            hooks,
            json={"url": "http://93.184.216.34/hooks", "events": ["message.created"]},
            headers=owner.headers,
        )
        assert "only https" in assert_problem(plain, 422)["detail"]
        assert client.get(hooks, headers=owner.headers).json()["items"] == []


def test_the_secret_is_shown_only_at_creation_and_endpoints_are_managed_by_their_owner(
    start_api: StartApi, receiver: Receiver
) -> None:
    api = start_api({"INGEST_URL_ALLOWLIST": "127.0.0.1", "MAX_WEBHOOKS_PER_CHATBOT": "2"})
    with api.client() as client:
        owner, stranger = sign_up(client), sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        hooks = f"/api/chatbots/{bot}/webhooks"
        first = register(client, owner, bot, receiver.url, ["lead.created"])
        second = register(client, owner, bot, receiver.url + "/2", ["message.created"])
        assert first["secret"] != second["secret"]
        over = client.post(
            hooks, json={"url": receiver.url, "events": ["lead.created"]}, headers=owner.headers
        )
        assert "MAX_WEBHOOKS_PER_CHATBOT" in assert_problem(over, 409)["detail"]

        page = client.get(hooks, params={"limit": 1}, headers=owner.headers).json()
        assert [item["id"] for item in page["items"]] == [second["id"]]
        rest = client.get(
            hooks, params={"limit": 1, "cursor": page["next_cursor"]}, headers=owner.headers
        ).json()
        assert [item["id"] for item in rest["items"]] == [first["id"]]
        assert rest["next_cursor"] is None
        shown = client.get(f"{hooks}/{first['id']}", headers=owner.headers).json()
        for view in [*page["items"], *rest["items"], shown]:
            assert "secret" not in view
        assert {key: value for key, value in first.items() if key != "secret"} == shown

        changed = client.patch(
            f"{hooks}/{first['id']}",
            json={"events": ["handoff.requested", "handoff.closed"], "enabled": False},
            headers=owner.headers,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"] == ["handoff.requested", "handoff.closed"]
        assert changed.json()["enabled"] is False
        assert "secret" not in changed.json()
        private = client.patch(
            f"{hooks}/{first['id']}", json={"url": "http://10.1.2.3/"}, headers=owner.headers
        )
        assert_problem(private, 422)
        unknown = client.post(
            hooks, json={"url": receiver.url, "events": ["nope.happened"]}, headers=owner.headers
        )
        assert_problem(unknown, 422)

        assert_problem(client.get(hooks, headers=stranger.headers), 404)
        assert_problem(client.get(f"{hooks}/{first['id']}", headers=stranger.headers), 404)
        assert client.delete(f"{hooks}/{first['id']}", headers=owner.headers).status_code == 204
        assert_problem(client.get(f"{hooks}/{first['id']}", headers=owner.headers), 404)
        assert_problem(client.delete(f"{hooks}/{first['id']}", headers=owner.headers), 404)


def test_without_redis_the_api_process_sends_the_deliveries(
    start_api: StartApi, receiver: Receiver
) -> None:
    api = start_api({**FAST, "REDIS_URL": ""})
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        endpoint = register(client, owner, bot, receiver.url, ["message.created"])
        chat = client.post(
            f"/api/chatbots/{bot}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert chat.status_code == 200, chat.text
        for request in receiver.wait_for("message.created", 2):
            verify(endpoint["secret"], request.headers, request.body)
