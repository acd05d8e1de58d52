"""Retention against the running API and `botsmith worker`: a bot's `retention_days`, the round
that deletes conversations idle longer (with their messages, feedback and leads) and keeps the
newer ones, and expired refresh tokens cleaned the same way."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from tests.conftest import StartApi
from tests.support.api import Account, assert_problem, create_chatbot, login, sign_up
from tests.support.processes import ApiServer, IngestionWorker, poll_until

ORIGIN = "https://shop.example"
LEAD_FORM = {
    "enabled": True,
    "trigger": "after_messages",
    "after_messages": 1,
    "fields": {"name": "required", "email": "required"},
    "consent_text": "You may contact me.",
}
Db = Database[dict[str, Any]]


@pytest.fixture
def api(start_api: StartApi) -> ApiServer:
    # A Redis of its own: housekeeping leases are per Redis, and other tests' workers use theirs.
    server = start_api({"RETENTION_CHECK_SECONDS": "0.5"}, private_redis=True)
    server.wait_ready()
    return server


@pytest.fixture
def db(api: ApiServer) -> Iterator[Db]:
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        yield mongo[api.env["DB_NAME"]]


def conversation_with_feedback_and_lead(client: httpx.Client, bot: str) -> str:
    session = uuid.uuid4().hex
    chat = client.post(
        f"/api/public/chatbots/{bot}/chat",
        json={"message": "Do you ship to Norway?", "session_id": session},
        headers={"Origin": ORIGIN},
    )
    assert chat.status_code == 200, chat.text
    answer = chat.json()
    rated = client.post(
        f"/api/public/chatbots/{bot}/messages/{answer['message_id']}/feedback",
        json={"rating": "up", "session_id": session},
        headers={"Origin": ORIGIN},
    )
    assert rated.status_code == 200, rated.text
    lead = client.post(
        f"/api/public/chatbots/{bot}/leads",
        json={
            "session_id": session,
            "conversation_id": answer["conversation_id"],
            "name": "Ada",
            "email": "ada@example.com",
            "consent": True,
        },
        headers={"Origin": ORIGIN},
    )
    assert lead.status_code == 201, lead.text
    conversation: str = answer["conversation_id"]
    return conversation


def backdate(db: Db, conversation: str, days: int) -> None:
    """Moves a conversation, its messages and its lead `days` into the past."""
    then = datetime.now(UTC) - timedelta(days=days)
    db.conversations.update_one(
        {"id": conversation}, {"$set": {"started_at": then, "last_message_at": then}}
    )
    db.messages.update_many({"conversation_id": conversation}, {"$set": {"timestamp": then}})
    db.leads.update_many(
        {"conversation_id": conversation}, {"$set": {"created_at": then, "updated_at": then}}
    )


def stored(db: Db, conversation: str) -> tuple[int, int, int]:
    """(conversations, messages, leads) stored for the conversation."""
    return (
        db.conversations.count_documents({"id": conversation}),
        db.messages.count_documents({"conversation_id": conversation}),
        db.leads.count_documents({"conversation_id": conversation}),
    )


def public_bot(client: httpx.Client, owner: Account, **fields: Any) -> str:
    bot: str = create_chatbot(
        client, owner, visibility="public", allowed_origins=[ORIGIN], lead_form=LEAD_FORM, **fields
    )["id"]
    return bot


def test_retention_days_is_kept_forever_by_default_and_refused_outside_its_range(
    api: ApiServer,
) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)
        assert bot["retention_days"] is None
        for bad in (0, 3651, "soon"):
            refused = client.post(
                "/api/chatbots", json={"name": "x", "retention_days": bad}, headers=owner.headers
            )
            assert_problem(refused, 422)
        path = f"/api/chatbots/{bot['id']}"
        set_days = client.patch(path, json={"retention_days": 90}, headers=owner.headers)
        assert set_days.status_code == 200, set_days.text
        assert set_days.json()["retention_days"] == 90
        renamed = client.patch(path, json={"name": "Renamed"}, headers=owner.headers)
        assert renamed.json()["retention_days"] == 90
        cleared = client.patch(path, json={"retention_days": None}, headers=owner.headers)
        assert cleared.json()["retention_days"] is None
        assert_problem(client.patch(path, json={"retention_days": 0}, headers=owner.headers), 422)


def test_the_round_deletes_only_conversations_idle_longer_than_the_bots_retention(
    api: ApiServer, db: Db, tmp_path: Path
) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = public_bot(client, owner, retention_days=30)
        keeping = public_bot(client, owner)  # no retention: kept forever
        old, recent = (conversation_with_feedback_and_lead(client, bot) for _ in range(2))
        old_elsewhere = conversation_with_feedback_and_lead(client, keeping)
        backdate(db, old, days=31)
        backdate(db, recent, days=29)
        backdate(db, old_elsewhere, days=400)
        assert stored(db, old) == (1, 2, 1)
        # A stale refresh token and a live one.
        stale = login(client, owner.email)["refresh_token"]
        yesterday = datetime.now(UTC) - timedelta(days=1)
        db.refresh_tokens.update_many({"user_id": owner.id}, {"$set": {"expires_at": yesterday}})
        live = login(client, owner.email)["refresh_token"]

        with IngestionWorker(tmp_path, api.env):
            poll_until(lambda: stored(db, old), lambda counts: counts == (0, 0, 0), 60)
            poll_until(
                lambda: db.refresh_tokens.count_documents({"expires_at": {"$lt": yesterday}}),
                lambda count: count == 0,
                60,
            )
        assert stored(db, recent) == (1, 2, 1)
        feedback = db.messages.find_one({"conversation_id": recent, "role": "assistant"})
        assert feedback is not None
        assert feedback["feedback"]["rating"] == "up"
        assert stored(db, old_elsewhere) == (1, 2, 1)
        # The live session still refreshes; the expired one was gone anyway.
        assert client.post("/api/auth/refresh", json={"refresh_token": live}).status_code == 200
        assert client.post("/api/auth/refresh", json={"refresh_token": stale}).status_code == 401
