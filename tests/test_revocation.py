"""Revocation reaches everything: open sockets, API keys and the widget stop at a password change,
a suspension, or a bot made private or paused, through real workers, Redis and the cache."""

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import Services
from tests.support.api import (
    PASSWORD,
    Account,
    assert_problem,
    create_admin,
    create_api_key,
    create_chatbot,
    login,
    sign_up,
    unique_email,
)
from tests.support.processes import ApiServer

ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="module")
def api(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Two workers sharing Redis; quiet sockets are re-checked every second."""
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "WEBSOCKET_REVALIDATE_SECONDS": "1",
    }
    with ApiServer(tmp_path_factory.mktemp("api"), env, workers=2) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def admin(api: ApiServer) -> Account:
    email = unique_email("admin")
    result = create_admin(api.env, email)
    assert result.returncode == 0, result.stderr
    with api.client() as client:
        tokens = login(client, email)
    return Account("", email, PASSWORD, tokens["access_token"], tokens["refresh_token"])


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


def ws_url(api: ApiServer, **params: str) -> str:
    return f"ws://127.0.0.1:{api.port}/api/ws?" + "&".join(f"{k}={v}" for k, v in params.items())


def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return message


def until_closed(ws: ClientConnection, timeout: float = 20) -> tuple[list[dict[str, Any]], int]:
    """The messages received before the server closed the socket, and its close code."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    close: Close | None = None
    try:
        while time.monotonic() < deadline:
            received.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    except ConnectionClosed as closed:
        close = closed.rcvd
    except TimeoutError:
        pass
    assert close is not None, f"the server did not close the socket; it sent {received}"
    return received, close.code


def change_password(client: httpx.Client, owner: Account) -> Account:
    """The owner after a password change, signed in with the new tokens."""
    new_password = "an entirely new passphrase"
    response = client.post(
        "/api/users/me/password",
        json={"current_password": owner.password, "new_password": new_password},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    return Account(
        owner.id, owner.email, new_password, tokens["access_token"], tokens["refresh_token"]
    )


def set_status(client: httpx.Client, admin: Account, user: Account, status: str) -> None:
    response = client.patch(
        f"/api/admin/users/{user.id}", json={"status": status}, headers=admin.headers
    )
    assert response.status_code == 200, response.text


@contextmanager
def owner_socket(api: ApiServer, owner: Account, *topics: str) -> Iterator[ClientConnection]:
    with connect(ws_url(api, token=owner.access_token)) as ws:
        assert receive(ws)["type"] == "welcome"
        for topic in topics:
            ws.send(json.dumps({"type": "subscribe", "topic": topic}))
            assert receive(ws) == {"type": "subscribed", "topic": topic}
        yield ws


@contextmanager
def visitor_socket(api: ApiServer, bot: str, session: str) -> Iterator[ClientConnection]:
    url = ws_url(api, chatbot_id=bot, session_id=session)
    with connect(url, origin=Origin(ORIGIN)) as ws:
        assert receive(ws)["visitor"] is True
        yield ws


def visitor_chat(ws: ClientConnection, bot: str, session: str) -> None:
    message = {"type": "chat", "id": "q", "chatbot_id": bot, "message": "Hi", "session_id": session}
    ws.send(json.dumps(message))


def test_a_password_change_closes_the_owners_open_socket_on_its_next_message(
    api: ApiServer, client: httpx.Client
) -> None:
    owner = sign_up(client)
    with owner_socket(api, owner) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
        renewed = change_password(client, owner)

        ws.send(json.dumps({"type": "ping"}))
        received, code = until_closed(ws)
        assert code == 1008
        assert received == [], "nothing is answered once the password changed"
    with owner_socket(api, renewed) as fresh:
        fresh.send(json.dumps({"type": "ping"}))
        assert receive(fresh) == {"type": "pong"}


def test_a_password_change_closes_a_notification_subscription_instead_of_notifying_it(
    api: ApiServer, client: httpx.Client
) -> None:
    owner = sign_up(client)
    bot = create_chatbot(client, owner)["id"]
    with owner_socket(api, owner, "notifications") as stale:
        renewed = change_password(client, owner)
        with owner_socket(api, renewed, "notifications") as fresh:
            chat = client.post(
                f"/api/chatbots/{bot}/chat", json={"message": "hello"}, headers=renewed.headers
            )
            assert chat.status_code == 200, chat.text
            event = receive(fresh)
            assert event["type"] == "event"
            assert event["data"]["type"] == "conversation.started"

            received, code = until_closed(stale)
            assert code == 1008
            assert [m for m in received if m["type"] == "event"] == []


def test_a_suspended_owners_quiet_socket_is_closed_and_reinstating_lets_them_back(
    api: ApiServer, client: httpx.Client, admin: Account
) -> None:
    owner = sign_up(client)
    with owner_socket(api, owner, "status") as ws:
        set_status(client, admin, owner, "suspended")
        _, code = until_closed(ws)  # without sending anything
        assert code == 1008
    set_status(client, admin, owner, "active")
    with owner_socket(api, owner) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}


def test_a_suspended_owners_api_keys_and_widget_stop_answering_until_reinstated(
    api: ApiServer, client: httpx.Client, admin: Account
) -> None:
    owner = sign_up(client)
    bot = create_chatbot(client, owner, visibility="public", allowed_origins=[ORIGIN])["id"]
    key = {"X-API-Key": create_api_key(client, owner, bot)["key"]}
    widget = {"Origin": ORIGIN}
    visitor = {"message": "Hello", "session_id": "visitor-1"}

    def answers() -> list[httpx.Response]:
        return [
            client.post(f"/api/chatbots/{bot}/chat", json={"message": "Hi"}, headers=key),
            client.post(f"/api/chatbots/{bot}/retrieve", json={"query": "Hi"}, headers=key),
            client.get(f"/api/public/chatbots/{bot}", headers=widget),
            client.post(f"/api/public/chatbots/{bot}/chat", json=visitor, headers=widget),
            client.get(f"/chat/{bot}"),
        ]

    assert [response.status_code for response in answers()] == [200] * 5
    with visitor_socket(api, bot, "visitor-2") as open_visitor:
        set_status(client, admin, owner, "suspended")

        key_chat, key_retrieve, config, widget_chat, page = answers()
        refusal = assert_problem(key_chat, 403)
        assert refusal["detail"] == (
            "This chatbot's owner account is suspended; its API keys do not answer"
        )
        assert assert_problem(key_retrieve, 403)["detail"] == refusal["detail"]
        for hidden in (config, widget_chat, page):
            assert_problem(hidden, 404)  # a visitor learns nothing about the account

        visitor_chat(open_visitor, bot, "visitor-2")
        _, code = until_closed(open_visitor)
        assert code == 1008
    with connect(ws_url(api, chatbot_id=bot, session_id="visitor-3"), origin=Origin(ORIGIN)) as ws:
        assert until_closed(ws)[1] == 1008

    set_status(client, admin, owner, "active")
    assert [response.status_code for response in answers()] == [200] * 5


@pytest.mark.parametrize("change", [{"visibility": "private"}, {"status": "paused"}])
def test_a_bot_made_private_or_paused_closes_its_open_visitor_sockets_at_their_next_message(
    api: ApiServer, client: httpx.Client, change: dict[str, str]
) -> None:
    owner = sign_up(client)
    bot = create_chatbot(client, owner, visibility="public", allowed_origins=[ORIGIN])["id"]
    with visitor_socket(api, bot, "visitor-1") as ws:
        visitor_chat(ws, bot, "visitor-1")
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] not in ("end", "error"):
            events.append(receive(ws))
        assert events[-1]["event"] == "end"

        updated = client.patch(f"/api/chatbots/{bot}", json=change, headers=owner.headers)
        assert updated.status_code == 200, updated.text

        ws.send(json.dumps({"type": "ping"}))
        received, code = until_closed(ws)
        assert code == 1008
        assert received == []
