"""Quotas against two running API processes that share MongoDB and a Redis of this module's own:
a bot's messages per day (429 naming the quota, whichever process gets the message, on JSON,
SSE and WebSocket chat, atomic under concurrency), a visitor session's messages per hour, an
owner's plan (bots, sources, messages per month) set by an administrator, the usage view, the
rejection metric, and counts that survive losing Redis and start again in the next period. One
more test runs without Redis."""

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import redis
from pymongo import MongoClient
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import Services, StartApi
from tests.support.api import (
    Account,
    add_text,
    assert_problem,
    create_admin,
    create_chatbot,
    login,
    sign_up,
    unique_email,
    wait_ready,
)
from tests.support.metrics import scrape, value
from tests.support.processes import ApiServer, RedisServer, two_apis_and_a_worker

ORIGIN = "https://shop.example"
REJECTIONS = "botsmith_quota_rejections_total"


@pytest.fixture(scope="module")
def apis(
    services: Services, module_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two `botsmith serve` processes on one database and one Redis, as two pods would be."""
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": module_redis.url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }
    folders = tmp_path_factory.mktemp("api-a"), tmp_path_factory.mktemp("api-b")
    with two_apis_and_a_worker(env, *folders) as pair:
        yield pair


@pytest.fixture(scope="module")
def api(apis: tuple[ApiServer, ApiServer]) -> ApiServer:
    return apis[0]


@pytest.fixture
def clients(apis: tuple[ApiServer, ApiServer]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with apis[0].client() as first, apis[1].client() as second:
        yield first, second


@pytest.fixture
def client(clients: tuple[httpx.Client, httpx.Client]) -> httpx.Client:
    return clients[0]


@pytest.fixture(scope="module")
def admin(api: ApiServer) -> Account:
    email = unique_email("admin")
    assert create_admin(api.env, email).returncode == 0
    with api.client() as client:
        tokens = login(client, email)
    return Account("", email, "", tokens["access_token"], tokens["refresh_token"])


@pytest.fixture
def quota_redis(module_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(module_redis.url, decode_responses=True)
    yield client
    client.close()


def _ask(client: httpx.Client, owner: Account, bot: str, **body: Any) -> httpx.Response:
    return client.post(
        f"/api/chatbots/{bot}/chat",
        json={"message": "When do you open?", **body},
        headers=owner.headers,
    )


def _ask_widget(client: httpx.Client, bot: str, session: str) -> httpx.Response:
    return client.post(
        f"/api/public/chatbots/{bot}/chat",
        json={"message": "When do you open?", "session_id": session},
        headers={"Origin": ORIGIN},
    )


def _usage(client: httpx.Client, owner: Account) -> dict[str, Any]:
    response = client.get("/api/usage", headers=owner.headers)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


def _quota(quotas: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(quota for quota in quotas if quota["quota"] == name)


def _bot_quota(usage: dict[str, Any], bot: str, name: str) -> dict[str, Any]:
    found = next(entry for entry in usage["chatbots"] if entry["chatbot_id"] == bot)
    return _quota(found["quotas"], name)


def _rejections(apis: tuple[ApiServer, ApiServer], quota: str) -> float:
    total = 0.0
    for server in apis:
        with server.client() as client:
            total += value(scrape(client), REJECTIONS, quota=quota)
    return total


def _chat_over_websocket(socket: ClientConnection, bot: str, **fields: str) -> dict[str, Any]:
    """Sends one chat message; returns its last reply (`end` or `error`)."""
    socket.send(json.dumps({"type": "chat", "id": "q", "chatbot_id": bot, **fields}))
    while True:
        reply: dict[str, Any] = json.loads(socket.recv(timeout=10))
        if reply["type"] == "chat" and reply["event"] in ("end", "error"):
            return reply


def _next_midnight() -> datetime:
    today = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def test_the_fourth_message_of_a_three_a_day_bot_is_refused_by_either_process(
    apis: tuple[ApiServer, ApiServer], clients: tuple[httpx.Client, httpx.Client]
) -> None:
    first, second = clients
    owner = sign_up(first)
    bot = create_chatbot(first, owner, quotas={"messages_per_day": 3})
    assert bot["quotas"] == {
        "messages_per_day": 3,
        "messages_per_month": None,
        "session_messages_per_hour": None,
    }
    before = _rejections(apis, "chatbot_messages_per_day")
    for client in (first, second, first):
        assert _ask(client, owner, bot["id"]).status_code == 200

    for client in (second, first):
        refused = _ask(client, owner, bot["id"])
        problem = assert_problem(refused, 429)
        assert problem["quota"] == "chatbot_messages_per_day"
        assert problem["limit"] == 3
        assert datetime.fromisoformat(problem["resets_at"]) == _next_midnight()
        assert "chatbot_messages_per_day" in problem["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 86_400

    streamed = _ask(second, owner, bot["id"], stream=True)
    assert assert_problem(streamed, 429)["quota"] == "chatbot_messages_per_day"
    assert "Retry-After" in streamed.headers
    ws_url = f"ws://127.0.0.1:{apis[1].port}/api/ws?token={owner.access_token}"
    with connect(ws_url) as socket:
        reply = _chat_over_websocket(socket, bot["id"], message="When do you open?")
    assert reply["event"] == "error"
    assert reply["data"]["quota"] == "chatbot_messages_per_day"
    assert reply["data"]["retry_after"] >= 1

    # Refused messages count nowhere; each refusal is counted by the process that made it.
    usage = _usage(second, owner)
    assert _bot_quota(usage, bot["id"], "chatbot_messages_per_day")["used"] == 3
    assert _bot_quota(usage, bot["id"], "chatbot_messages_per_month")["used"] == 3
    assert _quota(usage["quotas"], "owner_messages_per_month")["used"] == 3
    conversations = first.get(f"/api/chatbots/{bot['id']}/conversations", headers=owner.headers)
    assert len(conversations.json()["items"]) == 3
    assert _rejections(apis, "chatbot_messages_per_day") - before == 4

    # The owner lifts the quota (null: unlimited) and the bot answers again.
    lifted = first.patch(
        f"/api/chatbots/{bot['id']}",
        json={"quotas": {"messages_per_day": None}},
        headers=owner.headers,
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["quotas"]["messages_per_day"] is None
    assert _ask(second, owner, bot["id"]).status_code == 200


def test_concurrent_messages_on_two_processes_never_pass_the_quota(
    apis: tuple[ApiServer, ApiServer], client: httpx.Client
) -> None:
    owner = sign_up(client)
    bot = create_chatbot(client, owner, quotas={"messages_per_day": 3})["id"]

    def ask(number: int) -> int:
        with apis[number % 2].client() as own:
            return _ask(own, owner, bot).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(10)))
    assert sorted(statuses) == [200] * 3 + [429] * 7
    usage = _usage(client, owner)
    assert _bot_quota(usage, bot, "chatbot_messages_per_day")["used"] == 3


def test_losing_redis_keeps_the_count_and_the_next_period_starts_from_zero(
    clients: tuple[httpx.Client, httpx.Client], api: ApiServer, quota_redis: redis.Redis
) -> None:
    first, second = clients
    owner = sign_up(first)
    bot = create_chatbot(first, owner, quotas={"messages_per_day": 2})["id"]
    for client in (first, second):
        assert _ask(client, owner, bot).status_code == 200
    refused = assert_problem(_ask(first, owner, bot), 429)

    # Today's counter is a key named by the day that expires when the day ends.
    today = datetime.now(UTC).date().isoformat()
    day_key = f"botsmith:quota:{{{owner.id}}}:chatbot:{bot}:day:{today}"
    assert quota_redis.get(day_key) == "2"
    resets_at = datetime.fromisoformat(refused["resets_at"])
    assert quota_redis.expiretime(day_key) == int(resets_at.timestamp())

    # Redis loses every count: they are rebuilt from MongoDB's record, not reset.
    lost = cast("list[str]", quota_redis.keys(f"botsmith:quota:{{{owner.id}}}:*"))
    assert day_key in lost
    quota_redis.delete(*lost)
    assert assert_problem(_ask(second, owner, bot), 429)["quota"] == "chatbot_messages_per_day"
    assert quota_redis.get(day_key) == "2"

    # Midnight, as the counters see it: today's counts become yesterday's (the Redis key and
    # the record's day are moved back one day); the next message starts today's count at 0.
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    quota_redis.rename(day_key, day_key.replace(today, yesterday))
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        record = mongo[api.env["DB_NAME"]]["usage"]
        moved = 0
        # One document per API process that counted (app/core/writers.py).
        for document in record.find({"scope": f"chatbot:{bot}"}):
            count = document["days"].get(today, 0)
            record.update_one(
                {"_id": document["_id"]},
                {"$unset": {f"days.{today}": ""}, "$set": {f"days.{yesterday}": count}},
            )
            moved += count
        assert moved == 2
    assert _ask(first, owner, bot).status_code == 200
    assert quota_redis.get(day_key) == "1"
    usage = _usage(second, owner)
    assert _bot_quota(usage, bot, "chatbot_messages_per_day")["used"] == 1
    assert _bot_quota(usage, bot, "chatbot_messages_per_month")["used"] == 3


def test_a_widget_session_gets_its_hourly_quota_on_http_and_websocket(
    apis: tuple[ApiServer, ApiServer], clients: tuple[httpx.Client, httpx.Client]
) -> None:
    first, second = clients
    owner = sign_up(first)
    bot = create_chatbot(
        first,
        owner,
        visibility="public",
        allowed_origins=[ORIGIN],
        quotas={"session_messages_per_hour": 2},
    )["id"]
    before = _rejections(apis, "session_messages_per_hour")
    assert _ask_widget(first, bot, "visitor-a").status_code == 200
    assert _ask_widget(second, bot, "visitor-a").status_code == 200
    refused = _ask_widget(first, bot, "visitor-a")
    problem = assert_problem(refused, 429)
    assert problem["quota"] == "session_messages_per_hour"
    assert problem["limit"] == 2
    next_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert datetime.fromisoformat(problem["resets_at"]) == next_hour
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600

    # Another visitor has an hour of their own.
    assert _ask_widget(second, bot, "visitor-b").status_code == 200
    url = f"ws://127.0.0.1:{apis[1].port}/api/ws?chatbot_id={bot}&session_id=visitor-b"
    with connect(url, origin=Origin(ORIGIN)) as socket:
        fields = {"message": "When do you open?", "session_id": "visitor-b"}
        assert _chat_over_websocket(socket, bot, **fields)["event"] == "end"
        reply = _chat_over_websocket(socket, bot, **fields)
    assert reply["event"] == "error"
    assert reply["data"]["quota"] == "session_messages_per_hour"
    assert _rejections(apis, "session_messages_per_hour") - before == 2
    # Visitor messages count toward the bot's and the owner's totals too.
    usage = _usage(first, owner)
    assert _bot_quota(usage, bot, "chatbot_messages_per_day")["used"] == 4


def test_an_owners_plan_limits_bots_sources_and_monthly_messages(
    apis: tuple[ApiServer, ApiServer], client: httpx.Client, admin: Account
) -> None:
    owner = sign_up(client)
    plan_url = f"/api/admin/users/{owner.id}/plan"
    assert_problem(client.get(plan_url, headers=owner.headers), 403)
    default = client.get(plan_url, headers=admin.headers).json()
    assert default["updated_at"] is None
    assert default["effective"] == {
        "max_chatbots": 100,
        "max_sources_per_chatbot": 200,
        "max_chars_per_chatbot": 5_000_000,
        "messages_per_month": None,
    }
    plan = {"max_chatbots": 1, "max_sources_per_chatbot": 1, "messages_per_month": 2}
    updated = client.put(plan_url, json=plan, headers=admin.headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["effective"]["max_chatbots"] == 1
    assert updated.json()["own"]["max_chars_per_chatbot"] is None
    assert_problem(
        client.put("/api/admin/users/nobody/plan", json=plan, headers=admin.headers), 404
    )

    bot = create_chatbot(client, owner)["id"]
    before = _rejections(apis, "chatbots")
    second_bot = client.post("/api/chatbots", json={"name": "Two"}, headers=owner.headers)
    problem = assert_problem(second_bot, 409)
    assert (problem["quota"], problem["limit"]) == ("chatbots", 1)
    assert "the account's plan" in problem["detail"]
    assert "resets_at" not in problem
    assert _rejections(apis, "chatbots") - before == 1

    add_text(client, owner, bot, "Hours", "We open at nine in the morning.")
    source = client.post(
        f"/api/chatbots/{bot}/sources/text",
        json={"title": "More", "text": "And close at five."},
        headers=owner.headers,
    )
    assert assert_problem(source, 409)["quota"] == "sources_per_chatbot"

    assert _ask(client, owner, bot).status_code == 200
    assert _ask(client, owner, bot).status_code == 200
    monthly = assert_problem(_ask(client, owner, bot), 429)
    assert monthly["quota"] == "owner_messages_per_month"
    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(monthly["resets_at"]) == next_month

    usage = _usage(client, owner)
    assert usage["plan"]["max_chatbots"] == 1
    assert _quota(usage["quotas"], "chatbots") == {
        "quota": "chatbots",
        "used": 1,
        "limit": 1,
        "resets_at": None,
    }
    owner_messages = _quota(usage["quotas"], "owner_messages_per_month")
    assert (owner_messages["used"], owner_messages["limit"]) == (2, 2)
    assert _bot_quota(usage, bot, "sources_per_chatbot")["used"] == 1
    chars = _bot_quota(usage, bot, "chars_per_chatbot")
    assert (chars["used"], chars["limit"]) == (len("We open at nine in the morning."), 5_000_000)
    seen_by_admin = client.get(f"/api/admin/users/{owner.id}/usage", headers=admin.headers)
    assert seen_by_admin.json() == usage

    # Back to the platform's defaults: the owner may create bots and chat again.
    reset = client.put(plan_url, json={}, headers=admin.headers)
    assert reset.json()["effective"]["messages_per_month"] is None
    create_chatbot(client, owner)
    assert _ask(client, owner, bot).status_code == 200


def test_without_redis_one_process_counts_and_mongodb_keeps_the_month(
    start_api: StartApi,
) -> None:
    env = {"REDIS_URL": ""}
    api = start_api(env)
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner, quotas={"messages_per_month": 2})["id"]
        assert _ask(client, owner, bot).status_code == 200
        assert _ask(client, owner, bot).status_code == 200
        assert assert_problem(_ask(client, owner, bot), 429)["quota"] == (
            "chatbot_messages_per_month"
        )
    api.stop()
    restarted = start_api(env)  # the same database, a new process with no counts of its own
    with restarted.client() as client:
        refused = assert_problem(_ask(client, owner, bot), 429)
        assert refused["quota"] == "chatbot_messages_per_month"
        assert _bot_quota(_usage(client, owner), bot, "chatbot_messages_per_month")["used"] == 2


def test_the_plans_stored_characters_cap_text_at_intake_and_files_when_read(
    client: httpx.Client, admin: Account
) -> None:
    owner = sign_up(client)
    plan = {"max_chars_per_chatbot": 50}
    put = client.put(f"/api/admin/users/{owner.id}/plan", json=plan, headers=admin.headers)
    assert put.status_code == 200, put.text
    bot = create_chatbot(client, owner)["id"]
    text = client.post(
        f"/api/chatbots/{bot}/sources/text",
        json={"title": "Long", "text": "x" * 60},
        headers=owner.headers,
    )
    problem = assert_problem(text, 409)
    assert (problem["quota"], problem["limit"]) == ("chars_per_chatbot", 50)

    # A file's characters are known once it is read: the source fails, naming the cap.
    uploaded = client.post(
        f"/api/chatbots/{bot}/sources/file",
        files={"file": ("long.txt", b"word " * 20)},
        headers=owner.headers,
    )
    assert uploaded.status_code == 202, uploaded.text
    settled = wait_ready(client, owner, bot, uploaded.json()["id"])
    assert settled["status"] == "failed"
    assert "past 50" in settled["error"]
