"""Erasure on request against the running API and `botsmith worker`: a visitor's data by session
or end-user id, an owner's whole account (by the owner or an administrator), idempotence, and
an erasure that survives its worker being killed midway."""

import hashlib
import json
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pymongo import MongoClient
from pymongo.database import Database

from tests.conftest import StartApi
from tests.support.api import (
    PASSWORD,
    Account,
    add_text,
    assert_problem,
    create_admin,
    create_api_key,
    create_chatbot,
    login,
    sign_up,
    unique_email,
)
from tests.support.processes import ApiServer, IngestionWorker, poll_until

ORIGIN = "https://shop.example"
LEAD_FORM = {
    "enabled": True,
    "trigger": "after_messages",
    "after_messages": 1,
    "fields": {"name": "required", "email": "required"},
    "consent_text": "You may contact me.",
}
EVENTS = ["conversation.created", "message.created", "feedback.created", "lead.created"]
# The audit log keeps its entries (identifiers only) for AUDIT_RETENTION_DAYS, by design.
KEPT = {"audit_log"}
Db = Database[dict[str, Any]]


@pytest.fixture
def api(start_api: StartApi) -> ApiServer:
    env = {"INGEST_URL_ALLOWLIST": "127.0.0.1", "ERASURE_CHECK_SECONDS": "0.2"}
    # A Redis of its own: housekeeping leases are per Redis, and other tests' workers use theirs.
    server = start_api(env, private_redis=True)
    server.wait_ready()
    return server


@pytest.fixture
def db(api: ApiServer) -> Iterator[Db]:
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        yield mongo[api.env["DB_NAME"]]


@pytest.fixture
def redis_client(api: ApiServer) -> Iterator[redis.Redis]:
    client: redis.Redis = redis.Redis.from_url(api.env["REDIS_URL"])
    yield client
    client.close()


def documents_mentioning(db: Db, *needles: str) -> list[tuple[str, str]]:
    """(collection, document) of every document, in every collection, whose JSON holds a
    needle."""
    found = []
    for name in db.list_collection_names():
        if name in KEPT:
            continue
        for document in db[name].find({}):
            text = json.dumps(document, default=str)
            if any(needle in text for needle in needles):
                found.append((name, text[:300]))
    return found


def redis_keys_mentioning(client: redis.Redis, needle: str) -> list[bytes]:
    return list(client.scan_iter(match=f"*{needle}*", count=1000))


def visitor_chat(
    client: httpx.Client, bot: str, session: str, message: str, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        f"/api/public/chatbots/{bot}/chat",
        json={"message": message, "session_id": session, **extra},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def visitor_traces(client: httpx.Client, bot: str, session: str, **extra: Any) -> str:
    """A visitor's two messages, feedback and lead; returns the conversation's id."""
    first = visitor_chat(client, bot, session, "Do you ship to Norway?", **extra)
    conversation: str = first["conversation_id"]
    visitor_chat(client, bot, session, "And to Iceland?", conversation_id=conversation, **extra)
    rated = client.post(
        f"/api/public/chatbots/{bot}/messages/{first['message_id']}/feedback",
        json={"rating": "down", "comment": "not helpful", "session_id": session},
        headers={"Origin": ORIGIN},
    )
    assert rated.status_code == 200, rated.text
    lead = client.post(
        f"/api/public/chatbots/{bot}/leads",
        json={
            "session_id": session,
            "conversation_id": conversation,
            "name": "Ada Lovelace",
            "email": f"ada-{session[:6]}@example.com",
            "consent": True,
        },
        headers={"Origin": ORIGIN},
    )
    assert lead.status_code == 201, lead.text
    return conversation


def shop_bot(client: httpx.Client, owner: Account) -> str:
    bot: str = create_chatbot(
        client, owner, visibility="public", allowed_origins=[ORIGIN], lead_form=LEAD_FORM
    )["id"]
    hook = client.post(
        f"/api/chatbots/{bot}/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": EVENTS},
        headers=owner.headers,
    )
    assert hook.status_code == 201, hook.text
    return bot


def request_erasure(
    client: httpx.Client, owner: Account, bot: str, **subject: str
) -> dict[str, Any]:
    response = client.post(f"/api/chatbots/{bot}/erasures", json=subject, headers=owner.headers)
    assert response.status_code == 202, response.text
    erasure: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/chatbots/{bot}/erasures/{erasure['id']}"
    return erasure


def wait_done(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None, timeout: float = 60
) -> Any:
    def status() -> Any:
        response = client.get(path, headers=headers or {})
        assert response.status_code == 200, response.text
        return response.json()

    return poll_until(status, lambda erasure: erasure["status"] == "done", timeout)


def test_a_visitor_erasure_leaves_no_trace_of_the_session_and_running_it_again_deletes_nothing(
    api: ApiServer, db: Db, redis_client: redis.Redis, tmp_path: Path
) -> None:
    session, other_session = f"s{uuid.uuid4().hex}", f"s{uuid.uuid4().hex}"
    with api.client() as client:
        owner = sign_up(client)
        bot = shop_bot(client, owner)
        conversation = visitor_traces(client, bot, session)
        kept = visitor_traces(client, bot, other_session)
        assert documents_mentioning(db, session), "the set-up stored nothing about the visitor"
        asked = [name for name, _ in documents_mentioning(db, "iceland")]
        assert "analytics_hours" in asked, "the rollups hold the question's text"
        assert db.webhook_deliveries.count_documents({"body": {"$regex": conversation}}) > 0

        erasure = request_erasure(client, owner, bot, session_id=session)
        assert erasure["status"] == "pending"
        # Asked again while under way: the same erasure.
        assert request_erasure(client, owner, bot, session_id=session)["id"] == erasure["id"]
        path = f"/api/chatbots/{bot}/erasures/{erasure['id']}"
        with IngestionWorker(tmp_path, api.env):
            done = wait_done(client, path, owner.headers)
            assert done["counts"]["conversations"] == 1
            assert done["counts"]["messages"] == 4  # two questions, two answers (one rated)
            assert done["counts"]["leads"] == 1
            assert done["counts"]["webhook_deliveries"] >= 5
            assert done["done_at"] is not None
            # The receipt's salted hash is stored, never returned.
            assert "salt" not in done
            assert "subject_hash" not in done
            stored = db.erasures.find_one({"id": erasure["id"]})
            assert stored is not None
            receipt_hash = hashlib.sha256((stored["salt"] + session).encode()).hexdigest()
            assert stored["subject_hash"] == receipt_hash

            # The analytics rollups count visitors by a short hash of the session.
            hashed = hashlib.blake2b(session.encode(), digest_size=8).hexdigest()
            assert documents_mentioning(db, session, conversation, hashed) == []
            assert redis_keys_mentioning(redis_client, session) == []
            # The visitor's words left the analytics too: the other visitor asked the same, and
            # the rollups' entry lost its text; what remains is the other visitor's own.
            assert "analytics_hours" not in {n for n, _ in documents_mentioning(db, "celand")}
            assert all(
                m["conversation_id"] == kept
                for m in db.messages.find({"content": {"$regex": "Iceland"}})
            )
            # The other visitor keeps everything.
            assert db.conversations.count_documents({"id": kept}) == 1
            assert db.messages.count_documents({"conversation_id": kept}) == 4
            assert db.leads.count_documents({"session_id": other_session}) == 1

            again = request_erasure(client, owner, bot, session_id=session)
            assert again["id"] != erasure["id"]
            repeated = wait_done(
                client, f"/api/chatbots/{bot}/erasures/{again['id']}", owner.headers
            )
            assert sum(repeated["counts"].values()) == 0
            assert db.messages.count_documents({"conversation_id": kept}) == 4

        # Another owner cannot read it; nobody can without credentials.
        stranger = sign_up(client)
        assert_problem(client.get(path, headers=stranger.headers), 404)
        assert_problem(client.get(path), 401)


def test_an_end_user_erasure_covers_every_session_the_site_gave_that_id(
    api: ApiServer, db: Db, tmp_path: Path
) -> None:
    end_user = f"customer-{uuid.uuid4().hex[:8]}"
    sessions = [f"s{uuid.uuid4().hex}" for _ in range(2)]
    with api.client() as client:
        owner = sign_up(client)
        bot = shop_bot(client, owner)
        conversations = [visitor_traces(client, bot, s, end_user_id=end_user) for s in sessions]
        stored = db.conversations.find_one({"id": conversations[0]})
        assert stored is not None
        assert stored["end_user_id"] == end_user
        bystander = visitor_traces(client, bot, f"s{uuid.uuid4().hex}")

        both = client.post(
            f"/api/chatbots/{bot}/erasures",
            json={"session_id": sessions[0], "end_user_id": end_user},
            headers=owner.headers,
        )
        assert_problem(both, 422)
        erasure = request_erasure(client, owner, bot, end_user_id=end_user)
        with IngestionWorker(tmp_path, api.env):
            done = wait_done(client, f"/api/chatbots/{bot}/erasures/{erasure['id']}", owner.headers)
        assert done["counts"]["conversations"] == 2
        assert documents_mentioning(db, end_user, *sessions, *conversations) == []
        assert db.conversations.count_documents({"id": bystander}) == 1


def test_an_erasure_whose_worker_is_killed_midway_is_finished_by_the_next_worker(
    api: ApiServer, db: Db, tmp_path: Path
) -> None:
    session = f"s{uuid.uuid4().hex}"
    with api.client() as client:
        owner = sign_up(client)
        bot = shop_bot(client, owner)
        conversation = visitor_traces(client, bot, session)
        # A long conversation, so that one document per batch takes many batches.
        start = datetime.now(UTC) - timedelta(days=1)
        db.messages.insert_many(
            {
                "id": uuid.uuid4().hex,
                "conversation_id": conversation,
                "chatbot_id": bot,
                "role": "user",
                "content": f"question {n}",
                "timestamp": start + timedelta(seconds=n),
            }
            for n in range(200)
        )
        erasure = request_erasure(client, owner, bot, session_id=session)
        one_at_a_time = {**api.env, "RETENTION_BATCH_SIZE": "1"}

        def progress() -> dict[str, Any]:
            found = db.erasures.find_one({"id": erasure["id"]})
            assert found is not None
            return found

        first = IngestionWorker(tmp_path / "first", one_at_a_time)
        first.start()
        try:
            poll_until(progress, lambda e: e.get("counts", {}).get("messages", 0) >= 5, 60)
            first.signal(signal.SIGKILL)
            first.wait(10)
        finally:
            first.stop()
        midway = progress()
        assert midway["status"] == "running"
        assert db.messages.count_documents({"conversation_id": conversation}) > 0

        with IngestionWorker(tmp_path / "second", one_at_a_time):
            path = f"/api/chatbots/{bot}/erasures/{erasure['id']}"
            # The killed worker's lease on the round lapses first (at most 30 s).
            done = wait_done(client, path, owner.headers, timeout=180)
        assert db.messages.count_documents({"conversation_id": conversation}) == 0
        # A batch deleted just before the kill may have gone uncounted; never more than one.
        assert 203 <= done["counts"]["messages"] <= 204
        assert documents_mentioning(db, session, conversation) == []


def test_deleting_ones_account_erases_everything_it_owns_and_keeps_a_receipt(
    api: ApiServer, db: Db, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with api.client() as client, IngestionWorker(tmp_path, api.env):
        owner = sign_up(client, unique_email("leaving"))
        login(client, owner.email)  # a second session: a second refresh token
        bots = [shop_bot(client, owner) for _ in range(2)]
        add_text(client, owner, bots[0], "Shipping", "We ship to Norway within five days.")
        create_api_key(client, owner, bots[1])
        conversations = [visitor_traces(client, bot, f"s{uuid.uuid4().hex}") for bot in bots]
        owner_chat = client.post(
            f"/api/chatbots/{bots[0]}/chat", json={"message": "hi"}, headers=owner.headers
        )
        assert owner_chat.status_code == 200, owner_chat.text
        neighbour = sign_up(client)
        neighbour_bot = shop_bot(client, neighbour)
        neighbour_conversation = visitor_traces(client, neighbour_bot, f"s{uuid.uuid4().hex}")
        assert documents_mentioning(db, owner.id)

        wrong = client.request(
            "DELETE", "/api/users/me", json={"password": "not it"}, headers=owner.headers
        )
        assert_problem(wrong, 403)
        assert client.get("/api/users/me", headers=owner.headers).status_code == 200
        # The refused request's erasure was withdrawn before anything happened.
        assert db.erasures.count_documents({"subject.user_id": owner.id}) == 0

        response = client.request(
            "DELETE", "/api/users/me", json={"password": PASSWORD}, headers=owner.headers
        )
        assert response.status_code == 202, response.text
        erasure = response.json()
        assert erasure["kind"] == "account"
        assert response.headers["location"] == f"/api/erasures/{erasure['id']}"
        # Its use ends at once: the token no longer works, nor does the password.
        assert_problem(client.get("/api/users/me", headers=owner.headers), 401)
        refused = client.post("/api/auth/login", json={"email": owner.email, "password": PASSWORD})
        assert refused.status_code == 401

        done = wait_done(client, f"/api/erasures/{erasure['id']}")
        # Without credentials: the progress and counts only.
        assert set(done) == {"id", "kind", "status", "requested_at", "done_at", "counts"}
        assert done["counts"]["chatbots"] == 2
        assert done["counts"]["users"] == 1
        stored = db.erasures.find_one({"id": erasure["id"]})
        assert stored is not None
        assert (
            stored["subject_hash"]
            == hashlib.sha256((stored["salt"] + owner.id).encode()).hexdigest()
        )
        leftovers = documents_mentioning(db, owner.id, owner.email, *bots, *conversations)
        assert leftovers == []
        assert redis_keys_mentioning(redis_client, owner.id) == []
        # The neighbour's bot is untouched.
        assert db.conversations.count_documents({"id": neighbour_conversation}) == 1
        assert client.get("/api/users/me", headers=neighbour.headers).status_code == 200


def test_an_administrator_erases_any_account(api: ApiServer, db: Db, tmp_path: Path) -> None:
    admin_email = unique_email("admin")
    created = create_admin(api.env, admin_email)
    assert created.returncode == 0, created.stderr
    with api.client() as client, IngestionWorker(tmp_path, api.env):
        admin_token = login(client, admin_email)["access_token"]
        admin = {"Authorization": f"Bearer {admin_token}"}
        admin_id = client.get("/api/users/me", headers=admin).json()["id"]
        # Never one's own account (the only administrator's, here) through this route.
        assert_problem(client.post(f"/api/admin/users/{admin_id}/erasure", headers=admin), 409)
        assert db.erasures.count_documents({"subject.user_id": admin_id}) == 0
        assert client.get("/api/users/me", headers=admin).status_code == 200
        user = sign_up(client)
        bot = shop_bot(client, user)
        visitor_traces(client, bot, f"s{uuid.uuid4().hex}")

        assert_problem(
            client.post(f"/api/admin/users/{user.id}/erasure", headers=user.headers), 403
        )
        assert_problem(
            client.post(f"/api/admin/users/{uuid.uuid4().hex}/erasure", headers=admin), 404
        )
        response = client.post(f"/api/admin/users/{user.id}/erasure", headers=admin)
        assert response.status_code == 202, response.text
        assert response.json()["requested_by"] == "admin"
        wait_done(client, f"/api/erasures/{response.json()['id']}")
        assert documents_mentioning(db, user.id, user.email, bot) == []
        entries = list(db.audit_log.find({"action": "erasure.requested"}))
        assert [entry["target"] for entry in entries] == [f"user:{user.id}"]
        assert user.email not in json.dumps(entries, default=str)


def test_a_visitor_erasure_deletes_no_redis_key_outside_the_visitors_own_counters(
    api: ApiServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with api.client() as client:
        owner, neighbour = sign_up(client), sign_up(client)
        bot, neighbour_bot = shop_bot(client, owner), shop_bot(client, neighbour)
        visitor_chat(client, neighbour_bot, f"s{uuid.uuid4().hex}", "Hello")
        assert client.get("/api/users/me", headers=neighbour.headers).status_code == 200
        address_window = "botsmith:rl:{public:ip:203.0.113.7}:60:1"
        redis_client.set(address_window, 3, ex=600)
        neighbours = sorted(redis_keys_mentioning(redis_client, neighbour.id))
        assert any(key.startswith(b"botsmith:quota:") for key in neighbours)
        assert any(b":day:" in key for key in neighbours)
        assert any(key.startswith(b"botsmith:rl:") for key in neighbours)

        # Ids the owner typed that happen to name someone else's keys, or a part of everyone's.
        erasures = [
            request_erasure(client, owner, bot, session_id=neighbour.id),
            request_erasure(client, owner, bot, session_id="day"),
            request_erasure(client, owner, bot, end_user_id="203.0.113.7"),
        ]
        with IngestionWorker(tmp_path, api.env):
            for erasure in erasures:
                path = f"/api/chatbots/{bot}/erasures/{erasure['id']}"
                done = wait_done(client, path, owner.headers)
                assert done["counts"].get("redis_keys", 0) == 0
        # Quota counters last their period (rate-limit windows and cache entries less).
        quota = [key for key in neighbours if key.startswith(b"botsmith:quota:")]
        assert all(redis_client.exists(key) for key in quota)
        assert redis_client.exists(address_window) == 1


def test_erasing_a_one_character_session_deletes_only_that_sessions_deliveries(
    api: ApiServer, db: Db, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = shop_bot(client, owner)
        erased = visitor_traces(client, bot, "a")
        kept_session = f"a{uuid.uuid4().hex}a"
        kept = visitor_traces(client, bot, kept_session)
        kept_deliveries = db.webhook_deliveries.count_documents({"body": {"$regex": kept}})
        assert kept_deliveries >= 5
        assert redis_keys_mentioning(redis_client, f"{bot}:a:hour")

        erasure = request_erasure(client, owner, bot, session_id="a")
        with IngestionWorker(tmp_path, api.env):
            done = wait_done(client, f"/api/chatbots/{bot}/erasures/{erasure['id']}", owner.headers)
        assert done["counts"]["webhook_deliveries"] >= 5
        assert done["counts"]["redis_keys"] == 1
        assert db.webhook_deliveries.count_documents({"body": {"$regex": erased}}) == 0
        assert db.webhook_deliveries.count_documents({"body": {"$regex": kept}}) == kept_deliveries
        assert db.conversations.count_documents({"id": kept}) == 1
        assert redis_keys_mentioning(redis_client, f"{bot}:a:hour") == []
        assert redis_keys_mentioning(redis_client, kept_session)


def test_deleting_a_chatbot_deletes_its_analytics_and_usage_records(api: ApiServer, db: Db) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = shop_bot(client, owner)
        visitor_traces(client, bot, f"s{uuid.uuid4().hex}")
        db.analytics_resolutions.insert_one(
            {"chatbot_id": bot, "conversation_id": uuid.uuid4().hex, "resolved": True}
        )
        owned = ("analytics_hours", "analytics_resolutions", "usage")
        for collection in owned:
            assert db[collection].count_documents({"chatbot_id": bot}) > 0, collection

        deleted = client.delete(f"/api/chatbots/{bot}", headers=owner.headers)
        assert deleted.status_code == 204, deleted.text
        poll_until(
            lambda: sum(db[name].count_documents({"chatbot_id": bot}) for name in owned),
            lambda left: left == 0,
            60,
        )
        # The owner's own monthly record is the account's, not the bot's.
        assert db.usage.count_documents({"user_id": owner.id, "chatbot_id": None}) == 1
