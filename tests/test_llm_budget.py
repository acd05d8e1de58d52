"""Spend controls on the platform's LLM key, against a running API (with Redis and an
ingestion worker) and a local OpenAI-compatible fake: the admin-managed model allowlist and
max_tokens ceiling, owners' token budgets (429 with Retry-After once spent, on JSON, SSE and
WebSocket chat), the usage in analytics, and counts that outlive a Redis restart."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import Services
from tests.support.api import (
    Account,
    add_text,
    assert_problem,
    create_admin,
    create_chatbot,
    login,
    sign_up,
    unique_email,
)
from tests.support.fake_llm import FakeLLM
from tests.support.processes import ApiServer, IngestionWorker, RedisServer, poll_until

QUESTION = "How fast do parcels ship?"
CHARGED = 120  # what the fake reports per call: 100 prompt + 20 completion tokens
DEFAULT_POLICY = {"models": ["test-model"], "max_tokens_ceiling": 4096}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def api(
    services: Services,
    llm: FakeLLM,
    module_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("api")
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": module_redis.url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
        "LLM_BASE_URL": llm.base_url,
        "LLM_API_KEY": "sk-test-key",
        "LLM_MODEL": "test-model",
        "LLM_TIMEOUT_SECONDS": "5",
        "LLM_OWNER_DAILY_TOKENS": "1000",
        "LLM_OWNER_MONTHLY_TOKENS": "100000",
    }
    with ApiServer(workdir, env) as server, IngestionWorker(workdir, server.env):
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def admin(api: ApiServer) -> Account:
    email = unique_email("admin")
    assert create_admin(api.env, email).returncode == 0
    with api.client() as client:
        tokens = login(client, email)
    return Account("", email, "", tokens["access_token"], tokens["refresh_token"])


def _llm_bot(client: httpx.Client, owner: Account, **model: Any) -> str:
    """A bot answering with the platform's LLM, with knowledge that answers QUESTION."""
    bot: str = create_chatbot(client, owner, model={"provider": "openai", **model})["id"]
    add_text(client, owner, bot, "Shipping", "Parcels ship within two days of the order.")
    return bot


def _ask(client: httpx.Client, owner: Account, bot: str, **body: Any) -> httpx.Response:
    return client.post(
        f"/api/chatbots/{bot}/chat", json={"message": QUESTION, **body}, headers=owner.headers
    )


def _usage(client: httpx.Client, owner: Account) -> dict[str, Any]:
    response = client.get("/api/analytics/usage", headers=owner.headers)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


def _set_policy(client: httpx.Client, admin: Account, policy: dict[str, Any]) -> dict[str, Any]:
    response = client.put("/api/admin/models", json=policy, headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _set_budget(
    client: httpx.Client, admin: Account, owner: Account, **limits: int | None
) -> dict[str, Any]:
    response = client.put(
        f"/api/admin/users/{owner.id}/llm-budget", json=limits, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_model_outside_the_allowlist_is_refused_until_an_admin_allows_it(
    client: httpx.Client, admin: Account
) -> None:
    owner = sign_up(client)
    policy = client.get("/api/admin/models", headers=admin.headers).json()
    assert policy["models"] == ["test-model"]  # LLM_MODEL, until an admin sets the list
    assert policy["updated_at"] is None
    assert policy["max_tokens_ceiling"] == 4096

    big = {"provider": "openai", "model": "big-model"}
    refused = client.post(
        "/api/chatbots", json={"name": "Big", "model": big}, headers=owner.headers
    )
    detail = assert_problem(refused, 422)["detail"]
    assert "'big-model' is not allowed" in detail
    assert "allowed models: test-model" in detail
    # An offline bot never calls the LLM: its model name is not checked.
    create_chatbot(client, owner, model={"provider": "offline", "model": "big-model"})
    assert_problem(
        client.put(
            "/api/admin/models",
            json={"models": ["big-model"], "max_tokens_ceiling": 1024},
            headers=owner.headers,
        ),
        403,
    )
    try:
        updated = _set_policy(
            client, admin, {"models": ["test-model", "big-model"], "max_tokens_ceiling": 1024}
        )
        assert updated["models"] == ["test-model", "big-model"]
        assert updated["updated_at"] is not None
        accepted = create_chatbot(client, owner, model=big)
        assert accepted["model"]["model"] == "big-model"
        too_long = client.post(
            "/api/chatbots",
            json={"name": "Long", "model": {**big, "max_tokens": 2048}},
            headers=owner.headers,
        )
        assert "ceiling of 1024" in assert_problem(too_long, 422)["detail"]
    finally:
        _set_policy(client, admin, DEFAULT_POLICY)


def test_a_bot_on_a_removed_model_answers_with_the_fallback_model_within_the_ceiling(
    client: httpx.Client, admin: Account, llm: FakeLLM
) -> None:
    owner = sign_up(client)
    try:
        _set_policy(
            client, admin, {"models": ["test-model", "big-model"], "max_tokens_ceiling": 4096}
        )
        bot = _llm_bot(client, owner, model="big-model", max_tokens=3000)
        assert _ask(client, owner, bot).status_code == 200
        assert llm.requests[-1]["body"]["model"] == "big-model"

        _set_policy(client, admin, {"models": ["test-model"], "max_tokens_ceiling": 256})
        answered = _ask(client, owner, bot)
        assert answered.status_code == 200, answered.text
        sent = llm.requests[-1]["body"]
        assert (sent["model"], sent["max_tokens"]) == ("test-model", 256)
        # Changing the bot's model settings means choosing an allowed model.
        changed = client.patch(
            f"/api/chatbots/{bot}", json={"model": {"temperature": 0.5}}, headers=owner.headers
        )
        assert "allowed models: test-model" in assert_problem(changed, 422)["detail"]
        renamed = client.patch(
            f"/api/chatbots/{bot}", json={"name": "Renamed"}, headers=owner.headers
        )
        assert renamed.status_code == 200
    finally:
        _set_policy(client, admin, DEFAULT_POLICY)


def test_a_spent_budget_is_a_429_with_retry_after_on_json_sse_and_websocket(
    api: ApiServer, client: httpx.Client, admin: Account, llm: FakeLLM
) -> None:
    owner = sign_up(client)
    bot = _llm_bot(client, owner)
    budget = _set_budget(client, admin, owner, daily_tokens=200)
    assert (budget["daily"]["limit"], budget["own_daily_tokens"]) == (200, 200)
    assert (budget["monthly"]["limit"], budget["own_monthly_tokens"]) == (100000, None)

    assert _ask(client, owner, bot).status_code == 200  # 120 spent
    assert _ask(client, owner, bot).status_code == 200  # admitted with 80 left; 240 spent
    calls = len(llm.requests)
    conversations = client.get(f"/api/chatbots/{bot}/conversations", headers=owner.headers)

    refused = _ask(client, owner, bot)
    problem = assert_problem(refused, 429)
    assert problem["title"] == "Token budget exhausted"
    assert "daily LLM token budget (200 tokens) is used up" in problem["detail"]
    midnight = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert f"resets at {midnight}T00:00:00Z" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400

    streamed = _ask(client, owner, bot, stream=True)
    assert_problem(streamed, 429)
    assert "Retry-After" in streamed.headers

    ws_url = f"ws://127.0.0.1:{api.port}/api/ws?token={owner.access_token}"
    with connect(ws_url) as ws:
        json.loads(ws.recv(timeout=10))  # the greeting
        ws.send(json.dumps({"type": "chat", "id": "c1", "chatbot_id": bot, "message": QUESTION}))
        reply = json.loads(ws.recv(timeout=10))
        while reply.get("type") != "chat":
            reply = json.loads(ws.recv(timeout=10))
    assert reply["event"] == "error"
    assert "daily LLM token budget" in reply["data"]["message"]

    assert len(llm.requests) == calls, "a refused turn never reaches the provider"
    after = client.get(f"/api/chatbots/{bot}/conversations", headers=owner.headers)
    assert after.json()["items"] == conversations.json()["items"], "nor is it stored"
    # The offline provider costs nothing: the owner's offline bots still answer.
    offline = create_chatbot(client, owner)["id"]
    assert _ask(client, owner, offline).status_code == 200

    # A monthly budget refuses until the month ends.
    _set_budget(client, admin, owner, daily_tokens=0, monthly_tokens=240)
    monthly = assert_problem(_ask(client, owner, bot), 429)
    assert "monthly LLM token budget (240 tokens)" in monthly["detail"]
    _set_budget(client, admin, owner, daily_tokens=0, monthly_tokens=0)  # 0: unlimited
    assert _ask(client, owner, bot).status_code == 200


def test_analytics_shows_the_tokens_spent_and_the_limits(
    client: httpx.Client, llm: FakeLLM
) -> None:
    owner = sign_up(client)
    fresh = _usage(client, owner)
    assert fresh["user_id"] == owner.id
    assert fresh["daily"] == {
        "used": 0,
        "limit": 1000,
        "remaining": 1000,
        "exhausted": False,
        "resets_at": fresh["daily"]["resets_at"],
    }
    assert fresh["monthly"]["limit"] == 100000
    resets = datetime.fromisoformat(fresh["daily"]["resets_at"])
    assert resets == datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
    )

    # A bot with no knowledge has nothing to answer from: the LLM is not called, nothing spent.
    empty = create_chatbot(client, owner, model={"provider": "openai"})["id"]
    assert _ask(client, owner, empty).status_code == 200
    assert _usage(client, owner)["daily"]["used"] == 0

    bot = _llm_bot(client, owner)
    assert _ask(client, owner, bot).status_code == 200
    usage = _usage(client, owner)
    assert (usage["daily"]["used"], usage["monthly"]["used"]) == (CHARGED, CHARGED)
    assert usage["daily"]["remaining"] == 1000 - CHARGED

    # A server that reports no usage is charged an estimate from the text sent and received.
    llm.usage = None
    try:
        assert _ask(client, owner, bot).status_code == 200
    finally:
        llm.usage = (100, 20)
    assert _usage(client, owner)["daily"]["used"] > CHARGED


def test_spent_tokens_outlive_a_redis_restart(
    api: ApiServer, client: httpx.Client, admin: Account, module_redis: RedisServer
) -> None:
    owner = sign_up(client)
    bot = _llm_bot(client, owner)
    assert _ask(client, owner, bot).status_code == 200
    assert _usage(client, owner)["daily"]["used"] == CHARGED

    module_redis.stop()  # no persistence: every counter is gone
    module_redis.start()
    poll_until(lambda: client.get("/readyz").status_code, lambda status: status == 200, 20)

    assert _usage(client, owner)["daily"]["used"] == CHARGED  # rebuilt from MongoDB
    assert _ask(client, owner, bot).status_code == 200
    assert _usage(client, owner)["monthly"]["used"] == 2 * CHARGED  # counted on, not from 0
    _set_budget(client, admin, owner, daily_tokens=2 * CHARGED)
    assert_problem(_ask(client, owner, bot), 429)
