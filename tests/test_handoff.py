"""Human handoff through two API servers (two processes sharing FerretDB and Redis, the first
with two workers): visitors ask for a person, agents claim, answer and close, the bot stays
silent meanwhile, and unclaimed handoffs get the fallback message."""

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Services, StartApi
from tests.support.api import (
    Account,
    analytics_command,
    assert_problem,
    create_chatbot,
    read_sse,
    sign_up,
)
from tests.support.processes import ApiServer

FALLBACK = "Nobody is here right now: leave your email and we will write back."
HANDOFF = {"enabled": True, "unclaimed_timeout_seconds": 3600, "fallback_message": FALLBACK}


@dataclass
class Servers:
    first: ApiServer  # two workers
    second: ApiServer  # another process on the same database and Redis


@pytest.fixture(scope="module")
def servers(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "HANDOFF_SWEEP_SECONDS": "0.3",
        "INGEST_URL_ALLOWLIST": "127.0.0.1",  # webhook endpoints on loopback
    }
    first = ApiServer(tmp_path_factory.mktemp("first"), env, workers=2)
    second = ApiServer(tmp_path_factory.mktemp("second"), env, workers=1)
    with first, second:
        first.wait_ready()
        second.wait_ready()
        yield Servers(first, second)


@pytest.fixture
def http(servers: Servers) -> Iterator[httpx.Client]:
    with servers.first.client() as client:
        yield client


def ws_url(api: ApiServer, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"ws://127.0.0.1:{api.port}/api/ws?{query}"


def receive_until(ws: ClientConnection, accept: Any, timeout: float = 20) -> dict[str, Any]:
    """The first message `accept` takes (earlier ones are skipped)."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if accept(message):
            return message


def event_of(kind: str) -> Any:
    return lambda m: m["type"] == "event" and m["data"]["type"] == kind


@contextmanager
def owner_socket(api: ApiServer, account: Account) -> Iterator[ClientConnection]:
    with connect(ws_url(api, token=account.access_token)) as ws:
        receive_until(ws, lambda m: m["type"] == "welcome")
        ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
        receive_until(ws, lambda m: m["type"] == "subscribed")
        yield ws


@contextmanager
def visitor_socket(
    api: ApiServer, bot: str, session: str, conversation: str
) -> Iterator[ClientConnection]:
    with connect(ws_url(api, chatbot_id=bot, session_id=session)) as ws:
        yield _following(ws, conversation)


def _following(ws: ClientConnection, conversation: str) -> ClientConnection:
    receive_until(ws, lambda m: m["type"] == "welcome")
    ws.send(
        json.dumps({"type": "subscribe", "topic": "conversation", "conversation_id": conversation})
    )
    subscribed = receive_until(ws, lambda m: m["type"] in ("subscribed", "error"))
    assert subscribed == {
        "type": "subscribed",
        "topic": "conversation",
        "conversation_id": conversation,
    }
    return ws


def public_bot(http: httpx.Client, owner: Account, **handoff: Any) -> str:
    bot = create_chatbot(http, owner, visibility="public", handoff={**HANDOFF, **handoff})
    return str(bot["id"])


def visitor_chat(http: httpx.Client, bot: str, session: str, message: str, **more: Any) -> Any:
    response = http.post(
        f"/api/public/chatbots/{bot}/chat",
        json={"message": message, "session_id": session, **more},
    )
    assert response.status_code == 200, response.text
    return response.json()


def ask_for_person(http: httpx.Client, bot: str, session: str, conversation: str) -> Any:
    response = http.post(
        f"/api/public/chatbots/{bot}/conversations/{conversation}/handoff",
        json={"session_id": session},
    )
    assert response.status_code == 200, response.text
    return response.json()


def invite(http: httpx.Client, owner: Account, bot: str, agent: Account, name: str) -> Any:
    response = http.post(
        f"/api/chatbots/{bot}/agents",
        json={"email": agent.email, "display_name": name},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def handoff_url(bot: str, conversation: str, action: str) -> str:
    return f"/api/chatbots/{bot}/handoffs/{conversation}/{action}"


def test_a_visitor_asks_for_a_person_and_the_owner_socket_is_notified(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner)
    config = http.get(f"/api/public/chatbots/{bot}").json()
    assert config["handoff"] == {"enabled": True}
    session = "visitor-one"
    conversation = visitor_chat(http, bot, session, "Where is my order?")["conversation_id"]
    with owner_socket(servers.second, owner) as ws:
        assert ask_for_person(http, bot, session, conversation) == {
            "conversation_id": conversation,
            "state": "waiting",
            "agent_name": None,
        }
        requested = receive_until(ws, event_of("handoff.requested"))["data"]
    assert requested["conversation_id"] == conversation
    assert requested["chatbot_id"] == bot
    assert requested["requested_by"] == "visitor"
    assert requested["state"] == "waiting"

    waiting = http.get(
        f"/api/chatbots/{bot}/handoffs", params={"state": "waiting"}, headers=owner.headers
    ).json()
    assert [h["conversation_id"] for h in waiting["items"]] == [conversation]
    assert waiting["items"][0]["session_id"] == session
    active = http.get(
        f"/api/chatbots/{bot}/handoffs", params={"state": "active"}, headers=owner.headers
    ).json()
    assert active["items"] == []
    # Asking again changes nothing; another visitor's session cannot ask for this conversation.
    assert ask_for_person(http, bot, session, conversation)["state"] == "waiting"
    stranger = http.post(
        f"/api/public/chatbots/{bot}/conversations/{conversation}/handoff",
        json={"session_id": "someone-else"},
    )
    assert_problem(stranger, 404)


def test_a_bot_without_handoff_refuses_visitors_asking_for_a_person(http: httpx.Client) -> None:
    owner = sign_up(http)
    bot = create_chatbot(http, owner, visibility="public")["id"]
    assert http.get(f"/api/public/chatbots/{bot}").json()["handoff"] == {"enabled": False}
    conversation = visitor_chat(http, bot, "s1", "Hello")["conversation_id"]
    refused = http.post(
        f"/api/public/chatbots/{bot}/conversations/{conversation}/handoff",
        json={"session_id": "s1"},
    )
    assert_problem(refused, 409)


def test_two_agents_claiming_at_once_one_wins_and_the_other_gets_409(
    servers: Servers, http: httpx.Client
) -> None:
    owner, agent = sign_up(http), sign_up(http)
    bot = public_bot(http, owner)
    invite(http, owner, bot, agent, "Ana")
    conversation = visitor_chat(http, bot, "s2", "Help")["conversation_id"]
    ask_for_person(http, bot, "s2", conversation)

    start = threading.Barrier(2)
    results: dict[str, httpx.Response] = {}

    def claim(name: str, api: ApiServer, account: Account) -> None:
        with api.client() as client:
            start.wait()
            results[name] = client.post(
                handoff_url(bot, conversation, "claim"), headers=account.headers
            )

    threads = [
        threading.Thread(target=claim, args=("owner", servers.first, owner)),
        threading.Thread(target=claim, args=("agent", servers.second, agent)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(response.status_code for response in results.values())
    assert statuses == [200, 409], {k: r.text for k, r in results.items()}
    loser = next(r for r in results.values() if r.status_code == 409)
    assert_problem(loser, 409)
    winner = next(name for name, r in results.items() if r.status_code == 200)
    claimed = results[winner].json()
    assert claimed["state"] == "active"
    assert claimed["claimed_by"] == (owner.id if winner == "owner" else agent.id)
    assert claimed["claimed_at"] is not None


def test_the_agent_reply_reaches_the_visitor_socket_on_another_process(
    servers: Servers, http: httpx.Client
) -> None:
    owner, agent = sign_up(http), sign_up(http)
    bot = public_bot(http, owner)
    invite(http, owner, bot, agent, "Ana from support")
    session = "s3"
    conversation = visitor_chat(http, bot, session, "I need a human")["conversation_id"]
    with visitor_socket(servers.second, bot, session, conversation) as visitor:
        ask_for_person(http, bot, session, conversation)
        assert receive_until(visitor, event_of("handoff.requested"))["data"]["state"] == "waiting"

        claim = http.post(handoff_url(bot, conversation, "claim"), headers=agent.headers)
        assert claim.status_code == 200, claim.text
        claimed = receive_until(visitor, event_of("handoff.claimed"))
        assert claimed["conversation_id"] == conversation
        assert claimed["data"]["agent_name"] == "Ana from support"
        assert "claimed_by" not in claimed["data"]  # visitors see no account ids

        reply = http.post(
            handoff_url(bot, conversation, "messages"),
            json={"content": "Hi, I am looking at your order now."},
            headers=agent.headers,
        )
        assert reply.status_code == 201, reply.text
        message = receive_until(visitor, event_of("handoff.message"))["data"]["message"]
        assert message["content"] == "Hi, I am looking at your order now."
        assert message["agent_name"] == "Ana from support"
        assert message["role"] == "agent"

        # The same over the agent's WebSocket, on the first server.
        with connect(ws_url(servers.first, token=agent.access_token)) as desk:
            receive_until(desk, lambda m: m["type"] == "welcome")
            desk.send(
                json.dumps(
                    {
                        "type": "agent_reply",
                        "id": "r1",
                        "chatbot_id": bot,
                        "conversation_id": conversation,
                        "content": "It ships tomorrow.",
                    }
                )
            )
            stored = receive_until(desk, lambda m: m["type"] in ("agent_reply", "error"))
            assert stored["type"] == "agent_reply", stored
            assert stored["id"] == "r1"
        live = receive_until(visitor, event_of("handoff.message"))["data"]["message"]
        assert live == {**stored["message"], "timestamp": live["timestamp"]}
        assert live["content"] == "It ships tomorrow."

    detail = http.get(
        f"/api/chatbots/{bot}/conversations/{conversation}", headers=owner.headers
    ).json()
    agent_messages = [m for m in detail["messages"] if m["role"] == "agent"]
    assert [(m["content"], m["agent_name"]) for m in agent_messages] == [
        ("Hi, I am looking at your order now.", "Ana from support"),
        ("It ships tomorrow.", "Ana from support"),
    ]


def test_a_visitor_cannot_follow_another_visitors_conversation(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner)
    conversation = visitor_chat(http, bot, "mine", "Hello")["conversation_id"]
    with connect(ws_url(servers.second, chatbot_id=bot, session_id="theirs")) as ws:
        receive_until(ws, lambda m: m["type"] == "welcome")
        ws.send(
            json.dumps(
                {"type": "subscribe", "topic": "conversation", "conversation_id": conversation}
            )
        )
        refused = receive_until(ws, lambda m: m["type"] in ("subscribed", "error"))
    assert refused["type"] == "error"


def test_the_bot_stays_silent_until_the_handoff_is_closed_and_answers_again_after(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner)
    session = "s4"
    first = visitor_chat(http, bot, session, "Hello")
    conversation = first["conversation_id"]
    assert first["handoff"] is None
    assert first["answer"]
    ask_for_person(http, bot, session, conversation)

    with owner_socket(servers.second, owner) as desk:
        held = visitor_chat(http, bot, session, "Are you there?", conversation_id=conversation)
        assert held["answer"] == ""
        assert held["handoff"] == {"state": "waiting", "agent_name": None}
        forwarded = receive_until(desk, event_of("handoff.message"))["data"]
        assert forwarded["conversation_id"] == conversation
        assert forwarded["message"]["content"] == "Are you there?"
        assert forwarded["message"]["id"] == held["message_id"]

    assert http.post(handoff_url(bot, conversation, "claim"), headers=owner.headers).is_success
    with servers.second.client() as other:
        streamed = other.post(
            f"/api/public/chatbots/{bot}/chat",
            json={
                "message": "Still there?",
                "session_id": session,
                "conversation_id": conversation,
                "stream": True,
            },
        )
    events = read_sse(streamed)
    assert [name for name, _ in events] == ["start", "handoff", "end"]
    assert events[1][1]["state"] == "active"

    closed = http.post(handoff_url(bot, conversation, "close"), headers=owner.headers)
    assert closed.status_code == 200, closed.text
    record = closed.json()
    assert record["state"] == "closed"
    assert record["requested_by"] == "visitor"
    assert record["claimed_by"] == record["closed_by"] == owner.id
    assert record["requested_at"] <= record["claimed_at"] <= record["closed_at"]
    assert_problem(http.post(handoff_url(bot, conversation, "close"), headers=owner.headers), 409)

    after = visitor_chat(http, bot, session, "Thanks, bye", conversation_id=conversation)
    assert after["handoff"] is None
    assert after["answer"]
    listed = http.get(
        f"/api/chatbots/{bot}/handoffs", params={"state": "closed"}, headers=owner.headers
    ).json()
    assert [h["conversation_id"] for h in listed["items"]] == [conversation]


def test_an_unclaimed_handoff_sends_the_fallback_message_once(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner, unclaimed_timeout_seconds=2)
    session = "s5"
    conversation = visitor_chat(http, bot, session, "Anyone?")["conversation_id"]
    with visitor_socket(servers.first, bot, session, conversation) as visitor:
        ask_for_person(http, bot, session, conversation)
        fallback = receive_until(visitor, event_of("handoff.fallback"))["data"]
    assert fallback["message"]["content"] == FALLBACK
    assert fallback["state"] == "waiting"
    detail = http.get(
        f"/api/chatbots/{bot}/conversations/{conversation}", headers=owner.headers
    ).json()
    assert [m["content"] for m in detail["messages"]].count(FALLBACK) == 1
    # The fallback is in the analytics rollups as the recount of the stored messages has it.
    check = analytics_command(servers.first.env, "check", bot)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = http.get(f"/api/chatbots/{bot}/handoffs", headers=owner.headers).json()
    assert listed["items"][0]["fallback_sent_at"] is not None
    # Nobody came, but the handoff stays open: an agent may still take it.
    assert http.post(handoff_url(bot, conversation, "claim"), headers=owner.headers).is_success


def test_an_invited_agent_can_claim_and_reply_but_sees_nothing_else_of_the_owner(
    servers: Servers, http: httpx.Client
) -> None:
    owner, agent = sign_up(http), sign_up(http)
    bot = public_bot(http, owner)
    other_bot = public_bot(http, owner)
    record = invite(http, owner, bot, agent, "Bo")
    assert record["user_id"] == agent.id
    agents = http.get(f"/api/chatbots/{bot}/agents", headers=owner.headers).json()
    assert [a["display_name"] for a in agents["items"]] == ["Bo"]
    conversation = visitor_chat(http, bot, "s6", "Help me")["conversation_id"]
    ask_for_person(http, bot, "s6", conversation)

    listed = http.get(f"/api/chatbots/{bot}/handoffs", headers=agent.headers)
    assert listed.status_code == 200, listed.text
    assert http.post(handoff_url(bot, conversation, "claim"), headers=agent.headers).is_success
    reply = http.post(
        handoff_url(bot, conversation, "messages"), json={"content": "Hi"}, headers=agent.headers
    )
    assert reply.status_code == 201
    assert reply.json()["agent_name"] == "Bo"

    for method, path in [
        ("GET", f"/api/chatbots/{bot}"),
        ("PATCH", f"/api/chatbots/{bot}"),
        ("GET", f"/api/chatbots/{bot}/conversations"),
        ("GET", f"/api/chatbots/{bot}/conversations/{conversation}"),
        ("GET", f"/api/chatbots/{bot}/sources"),
        ("GET", f"/api/chatbots/{bot}/api-keys"),
        ("GET", f"/api/chatbots/{bot}/agents"),
        ("POST", f"/api/chatbots/{bot}/chat"),
        ("GET", f"/api/chatbots/{other_bot}/handoffs"),
    ]:
        body: Any = {} if method in ("PATCH", "POST") else None
        if path.endswith("/chat"):
            body = {"message": "hi"}
        response = http.request(method, path, json=body, headers=agent.headers)
        assert_problem(response, 404)

    # The owner takes the access back: at once, the agent's handoff calls are 404 too.
    removed = http.delete(f"/api/chatbots/{bot}/agents/{record['id']}", headers=owner.headers)
    assert removed.status_code == 204
    assert_problem(http.get(f"/api/chatbots/{bot}/handoffs", headers=agent.headers), 404)
    assert_problem(http.post(handoff_url(bot, conversation, "close"), headers=agent.headers), 404)


def test_only_registered_accounts_can_be_invited_once(http: httpx.Client) -> None:
    owner, agent = sign_up(http), sign_up(http)
    bot = public_bot(http, owner)
    unknown = http.post(
        f"/api/chatbots/{bot}/agents",
        json={"email": "nobody-here@example.com", "display_name": "X"},
        headers=owner.headers,
    )
    assert_problem(unknown, 422)
    invite(http, owner, bot, agent, "Cy")
    again = http.post(
        f"/api/chatbots/{bot}/agents",
        json={"email": agent.email, "display_name": "Cy"},
        headers=owner.headers,
    )
    assert_problem(again, 409)


def test_the_bot_hands_over_by_itself_after_n_answers_it_did_not_know(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner, after_unanswered=2)
    session = "s7"
    with owner_socket(servers.second, owner) as desk:
        first = visitor_chat(http, bot, session, "What is the warranty?")
        assert first["answered"] is False
        assert first["handoff"] is None
        conversation = first["conversation_id"]
        second = visitor_chat(http, bot, session, "And the price?", conversation_id=conversation)
        assert second["answered"] is False
        assert second["answer"]  # the bot's own "I don't know" still reaches the visitor
        assert second["handoff"] == {"state": "waiting", "agent_name": None}
        requested = receive_until(desk, event_of("handoff.requested"))["data"]
    assert requested["conversation_id"] == conversation
    assert requested["requested_by"] == "bot"
    # From now on the bot is silent.
    third = visitor_chat(http, bot, session, "Hello?", conversation_id=conversation)
    assert third["answer"] == ""
    assert third["handoff"]["state"] == "waiting"


def test_the_owner_and_an_api_key_can_hand_a_conversation_over(
    servers: Servers, http: httpx.Client
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner)
    conversation = visitor_chat(http, bot, "s8", "Hi")["conversation_id"]
    by_owner = http.post(
        f"/api/chatbots/{bot}/conversations/{conversation}/handoff", headers=owner.headers
    )
    assert by_owner.status_code == 200, by_owner.text
    assert by_owner.json()["requested_by"] == "owner"
    key = http.post(
        f"/api/chatbots/{bot}/api-keys", json={"name": "crm"}, headers=owner.headers
    ).json()
    other = visitor_chat(http, bot, "s9", "Hi")["conversation_id"]
    by_key = http.post(
        f"/api/chatbots/{bot}/conversations/{other}/handoff", headers={"X-API-Key": key["key"]}
    )
    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["requested_by"] == "api_key"


def test_a_handoff_and_the_agents_reply_are_announced_to_the_bots_webhooks(
    http: httpx.Client,
) -> None:
    # Recorded for delivery (no worker runs here): the endpoint's delivery log shows each event.
    owner = sign_up(http)
    bot = public_bot(http, owner)
    events = ["handoff.requested", "handoff.closed", "message.created"]
    hook = http.post(
        f"/api/chatbots/{bot}/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": events},
        headers=owner.headers,
    )
    assert hook.status_code == 201, hook.text
    conversation = visitor_chat(http, bot, "s-hook", "Hi")["conversation_id"]
    ask_for_person(http, bot, "s-hook", conversation)
    for action, body in (("claim", None), ("messages", {"content": "Hello!"}), ("close", None)):
        done = http.post(handoff_url(bot, conversation, action), json=body, headers=owner.headers)
        assert done.status_code in (200, 201), done.text
    log = http.get(
        f"/api/chatbots/{bot}/webhooks/{hook.json()['id']}/deliveries",
        params={"limit": 100},
        headers=owner.headers,
    ).json()["items"]
    # The visitor's question, the bot's answer and the agent's reply are each a message.
    assert sorted(d["event_type"] for d in log) == [
        "handoff.closed",
        "handoff.requested",
        "message.created",
        "message.created",
        "message.created",
    ]


def test_a_handoff_survives_an_api_restart(
    tmp_path: Path, http: httpx.Client, servers: Servers
) -> None:
    owner = sign_up(http)
    bot = public_bot(http, owner)
    conversation = visitor_chat(http, bot, "s10", "Hi")["conversation_id"]
    ask_for_person(http, bot, "s10", conversation)
    env = {k: servers.first.env[k] for k in ("MONGO_URL", "REDIS_URL", "DB_NAME")}
    with ApiServer(tmp_path, env) as fresh, fresh.client() as client:
        listed = client.get(
            f"/api/chatbots/{bot}/handoffs", params={"state": "waiting"}, headers=owner.headers
        ).json()
        assert [h["conversation_id"] for h in listed["items"]] == [conversation]
        claimed = client.post(handoff_url(bot, conversation, "claim"), headers=owner.headers)
        assert claimed.status_code == 200, claimed.text
        held = client.post(
            f"/api/public/chatbots/{bot}/chat",
            json={"message": "Hi again", "session_id": "s10", "conversation_id": conversation},
        ).json()
        assert held["handoff"]["state"] == "active"


def test_without_redis_the_api_sends_the_fallback_itself(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": "", "HANDOFF_SWEEP_SECONDS": "0.3"})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = public_bot(client, owner, unclaimed_timeout_seconds=1)
        conversation = visitor_chat(client, bot, "s11", "Anyone?")["conversation_id"]
        with visitor_socket(api, bot, "s11", conversation) as visitor:
            ask_for_person(client, bot, "s11", conversation)
            fallback = receive_until(visitor, event_of("handoff.fallback"))["data"]
    assert fallback["message"]["content"] == FALLBACK
