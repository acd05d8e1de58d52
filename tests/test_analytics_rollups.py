"""Hourly analytics rollups written by the chat turn: equal to a recount of the raw messages after
a mixed workload and across two API processes, rebuilt by `botsmith analytics backfill`, checked
by `botsmith analytics check`, compacted by the housekeeping round (a day rewritten meanwhile
kept); a rollup write the database refuses counted, not raised; and unanswered questions the owner
answers from the analytics."""

import asyncio
import logging
import math
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from app.analytics.service import histogram_percentile
from app.chat.activity import ChatActivity
from app.chat.documents import MessageDocument
from app.core.db import Document, MongoDatabase
from app.core.rollups import (
    COLLECTION,
    DayRewrite,
    HourTally,
    compact,
    compacted_documents,
    day_of,
    latency_bucket,
    rewrite_day,
    unpack,
)
from app.core.security import utcnow
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient, MongoClient

from tests.conftest import Services, StartApi
from tests.support.api import (
    Account,
    add_text,
    analytics_command,
    assert_problem,
    create_chatbot,
    sign_up,
    wait_ready,
)
from tests.support.processes import ApiServer, free_port

KNOWLEDGE = """# Opening hours
The shop opens at nine in the morning and closes at six in the evening, Monday to Saturday.

# Returns
Unworn shoes can be returned within thirty days of purchase with the receipt.
"""
ANSWERABLE = "When does the shop open?"
UNANSWERABLE = "Zorblax quuxification of the frobnicator?"


def analytics(client: httpx.Client, owner: Account, bot: str, **params: str) -> dict[str, Any]:
    """A 30-day analytics view; `tz` varies the cache key, so each call can be fresh."""
    response = client.get(
        f"/api/chatbots/{bot}/analytics",
        params={"tz": params.pop("tz", "UTC"), **params},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def chat(
    client: httpx.Client, owner: Account, bot: str, message: str, **fields: Any
) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{bot}/chat", json={"message": message, **fields}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rate(client: httpx.Client, owner: Account, bot: str, message_id: str, rating: str) -> None:
    response = client.post(
        f"/api/chatbots/{bot}/messages/{message_id}/feedback",
        json={"rating": rating},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


def check(api: ApiServer, bot: str) -> None:
    checked = analytics_command(api.env, "check", bot)
    assert checked.returncode == 0, checked.stderr


@pytest.fixture
def api(start_api: StartApi) -> ApiServer:
    # Without Redis the API ingests in-process: no worker to wait for.
    server = start_api({"REDIS_URL": ""})
    server.wait_ready()
    return server


@pytest.fixture
def owner_and_bot(api: ApiServer) -> Iterator[tuple[httpx.Client, Account, str]]:
    with api.client(timeout=60) as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        add_text(client, owner, bot, "Shop", KNOWLEDGE)
        yield client, owner, bot


def test_rollups_equal_a_recount_of_the_messages_after_a_mixed_workload(
    api: ApiServer, owner_and_bot: tuple[httpx.Client, Account, str]
) -> None:
    client, owner, bot = owner_and_bot
    first = chat(client, owner, bot, ANSWERABLE, session_id="visitor-one")
    assert first["answered"] is True
    missed = chat(client, owner, bot, UNANSWERABLE, conversation_id=first["conversation_id"])
    assert missed["answered"] is False
    again = chat(client, owner, bot, ANSWERABLE.upper(), session_id="visitor-two")
    chat(client, owner, bot, UNANSWERABLE, session_id="visitor-one")
    rate(client, owner, bot, first["message_id"], "up")
    rate(client, owner, bot, again["message_id"], "down")
    rate(client, owner, bot, again["message_id"], "up")  # changed: down is taken back
    rate(client, owner, bot, missed["message_id"], "down")

    live = analytics(client, owner, bot)
    totals = live["totals"]
    assert (totals["conversations"], totals["messages"], totals["unique_visitors"]) == (3, 8, 2)
    assert (totals["feedback_up"], totals["feedback_down"], totals["idk_rate"]) == (2, 1, 0.5)
    assert live["top_questions"] == [
        {"question": "when does the shop open", "count": 2},
        {"question": "zorblax quuxification of the frobnicator", "count": 2},
    ]
    (unanswered,) = live["unanswered_questions"]
    assert (unanswered["question"], unanswered["count"]) == (
        "zorblax quuxification of the frobnicator",
        2,
    )
    assert unanswered["reasons"] == ["no_answer", "thumbs_down"]
    check(api, bot)

    assert analytics_command(api.env, "backfill", bot).returncode == 0
    rebuilt = analytics(client, owner, bot, tz="Europe/Berlin")
    assert rebuilt["totals"] == totals
    assert rebuilt["top_questions"] == live["top_questions"]
    check(api, bot)


def test_concurrent_chat_turns_from_two_api_processes_lose_no_count(
    start_api: StartApi,
) -> None:
    first, second = start_api(), start_api()
    first.wait_ready()
    second.wait_ready()
    with first.client(timeout=120) as one, second.client(timeout=120) as two:
        owner = sign_up(one)
        bot = create_chatbot(one, owner)["id"]
        turns = 24

        def turn(n: int) -> dict[str, Any]:
            client = one if n % 2 else two
            return chat(client, owner, bot, f"question number {n % 3}", session_id=f"s{n % 5}")

        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(turn, range(turns)))
        assert len({reply["conversation_id"] for reply in replies}) == turns
        totals = analytics(one, owner, bot)["totals"]
        assert (totals["conversations"], totals["messages"]) == (turns, 2 * turns)
        assert totals["unique_visitors"] == 5
        check(first, bot)


def test_backfill_rebuilds_rollups_of_messages_stored_before_them_and_is_idempotent(
    api: ApiServer,
) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        # Three hours of turns over two UTC days, stored straight in the database.
        base = datetime(2026, 5, 1, 21, 0, tzinfo=UTC)
        times = [base + timedelta(hours=h, minutes=m) for h in (0, 2, 3) for m in (5, 40)]
        conversations, messages = [], []
        for n, started in enumerate(times):
            conversation = f"{bot}-c{n}"
            conversations.append(
                {
                    "id": conversation,
                    "chatbot_id": bot,
                    "user_id": owner.id,
                    "session_id": f"s{n % 2}",
                    "started_at": started,
                    "last_message_at": started,
                    "message_count": 2,
                }
            )
            messages += [
                {
                    "id": uuid.uuid4().hex,
                    "conversation_id": conversation,
                    "chatbot_id": bot,
                    "role": "user",
                    "content": "Where is my parcel?",
                    "timestamp": started,
                },
                {
                    "id": uuid.uuid4().hex,
                    "conversation_id": conversation,
                    "chatbot_id": bot,
                    "role": "assistant",
                    "content": "I don't know",
                    "answered": n % 2 == 0,
                    "latency_ms": 100 * (n + 1),
                    "timestamp": started + timedelta(seconds=2),
                },
            ]
        with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
            db = mongo[api.env["DB_NAME"]]
            db.conversations.insert_many(conversations)
            db.messages.insert_many(messages)
        window = {"from": "2026-05-01T00:00:00Z", "to": "2026-05-03T00:00:00Z"}
        assert analytics(client, owner, bot, **window)["totals"]["messages"] == 0
        failed = analytics_command(api.env, "check", bot)
        assert failed.returncode == 1
        assert "messages: rollups 0, messages 4" in failed.stderr

        for _ in range(2):
            done = analytics_command(api.env, "backfill", bot)
            assert done.returncode == 0, done.stderr
            assert f"{bot}: 3 hours rebuilt" in done.stdout
        check(api, bot)
        hourly = analytics(
            client,
            owner,
            bot,
            **{"from": "2026-05-01T21:00:00Z", "to": "2026-05-02T01:00:00Z", "interval": "hour"},
        )
        assert [b["messages"] for b in hourly["series"]] == [4, 0, 4, 4]
        daily = analytics(client, owner, bot, tz="Europe/Berlin", **window)
        assert [(b["start"], b["messages"]) for b in daily["series"]] == [
            ("2026-05-01T00:00:00+02:00", 4),  # 21:05 UTC is 23:05 in Berlin
            ("2026-05-02T00:00:00+02:00", 8),  # 23:05 UTC is 01:05 on 2 May
            ("2026-05-03T00:00:00+02:00", 0),
        ]
        totals = daily["totals"]
        assert (totals["conversations"], totals["unique_visitors"], totals["idk_rate"]) == (
            6,
            2,
            0.5,
        )
        assert (totals["answer_latency_ms_p50"], totals["answer_latency_ms_p95"]) == (300, 600)
        assert daily["unanswered_questions"][0]["count"] == 3


def test_check_fails_with_a_readable_difference_after_a_rollup_is_tampered_with(
    api: ApiServer, owner_and_bot: tuple[httpx.Client, Account, str]
) -> None:
    client, owner, bot = owner_and_bot
    chat(client, owner, bot, ANSWERABLE)
    check(api, bot)
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        rollups = mongo[api.env["DB_NAME"]][COLLECTION]
        assert rollups.update_one({"chatbot_id": bot}, {"$inc": {"messages": 5}}).modified_count
    checked = analytics_command(api.env, "check", bot)
    assert checked.returncode == 1
    assert "messages: rollups 7, messages 2" in checked.stderr
    assert f"botsmith analytics backfill --chatbot {bot}" in checked.stderr
    assert analytics_command(api.env, "backfill", bot).returncode == 0
    check(api, bot)


def test_compaction_folds_each_hour_into_one_document_once(
    api: ApiServer, owner_and_bot: tuple[httpx.Client, Account, str]
) -> None:
    client, owner, bot = owner_and_bot
    for n in range(3):
        chat(client, owner, bot, ANSWERABLE, session_id=f"v{n}")
    before = analytics(client, owner, bot)["totals"]

    async def fold_later() -> tuple[int, int]:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            api.env["MONGO_URL"], tz_aware=True
        )
        try:
            db = mongo[api.env["DB_NAME"]]
            # The writers' documents of this hour close within the hour; fold as if later.
            later = utcnow() + timedelta(hours=2)
            return await compact(db, later), await compact(db, later)
        finally:
            await mongo.close()

    folded, again = asyncio.run(fold_later())
    assert folded >= 1
    assert again == 0
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        documents = list(mongo[api.env["DB_NAME"]][COLLECTION].find({"chatbot_id": bot}))
    assert len({d["hour"] for d in documents}) == len(documents)
    assert {d["writer"] for d in documents} == {""}
    assert analytics(client, owner, bot, tz="Asia/Tokyo")["totals"] == before
    check(api, bot)


@pytest.fixture
async def database(services: Services, db_name: str) -> AsyncIterator[MongoDatabase]:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(services.mongo_url, tz_aware=True)
    yield mongo[db_name]
    await mongo.drop_database(db_name)
    await mongo.close()


def _failed_writes() -> float:
    return REGISTRY.get_sample_value("botsmith_rollup_writes_total", {"result": "failed"}) or 0.0


@pytest.mark.anyio
async def test_a_rollup_write_the_database_refuses_is_counted_and_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable: AsyncMongoClient[Document] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=200, tz_aware=True
    )
    try:
        activity = ChatActivity(unreachable["botsmith"])
        before = _failed_writes()
        now = utcnow()
        answer: MessageDocument = {
            "id": uuid.uuid4().hex,
            "conversation_id": "c1",
            "chatbot_id": "bot",
            "role": "assistant",
            "content": "Nine o'clock.",
            "answered": True,
            "timestamp": now,
        }
        with caplog.at_level(logging.WARNING, logger="app.core.rollups"):
            await activity.message_stored(answer, "When do you open?")
            await activity.rating_changed(answer, "up", "When do you open?")
        assert _failed_writes() == before + 2
        warnings = [r for r in caplog.records if r.name == "app.core.rollups"]
        assert len(warnings) == 1  # at most one a minute, not one per write
    finally:
        await unreachable.close()


@pytest.mark.anyio
async def test_a_day_rewritten_since_it_was_read_is_reread_and_keeps_both_changes(
    database: MongoDatabase,
) -> None:
    rollups = database[COLLECTION]
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    start = HourTally(visitors={"gone", "kept"})
    (day,) = compacted_documents("bot", {hour: start})
    await rollups.insert_one(day)
    stale = await rollups.find_one({"chatbot_id": "bot"})
    assert stale is not None

    def adding(visitor: str) -> DayRewrite:
        def rewrite(document: Document) -> Document:
            hours = {h: HourTally.from_fields(f) for h, f in unpack(document).items()}
            hours[hour].visitors.add(visitor)
            (packed,) = compacted_documents("bot", hours)
            return {"$set": {"packed": packed["packed"]}}

        return rewrite

    def forgetting(document: Document) -> Document:
        hours = {h: HourTally.from_fields(f) for h, f in unpack(document).items()}
        hours[hour].visitors.discard("gone")
        (packed,) = compacted_documents("bot", hours)
        return {"$set": {"packed": packed["packed"]}}

    # Another round rewrites the day after `stale` was read.
    assert await rewrite_day(rollups, dict(stale), adding("new")) is not None
    assert await rewrite_day(rollups, stale, forgetting) is not None

    stored = await rollups.find_one({"chatbot_id": "bot", "hour": day_of(hour)})
    assert stored is not None
    assert stored["version"] == 2
    fields = unpack(stored)[hour]
    assert sorted(fields["visitors"]) == ["kept", "new"]


def test_an_unanswered_question_answered_by_the_owner_is_answered_next_time_and_counted(
    start_api: StartApi,
) -> None:
    # Without Redis the API ingests in-process: the answer is usable once its source is ready.
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client(timeout=60) as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        add_text(client, owner, bot, "Shop", KNOWLEDGE)
        missed = chat(client, owner, bot, UNANSWERABLE)
        assert missed["answered"] is False
        (unanswered,) = analytics(client, owner, bot)["unanswered_questions"]
        assert unanswered["message_id"] == missed["message_id"]
        assert unanswered["resolved"] is False

        answer = "Quuxification takes two days at our Frobnicator service desk."
        url = f"/api/chatbots/{bot}/analytics/unanswered/{unanswered['message_id']}/answer"
        created = client.post(url, json={"answer": answer}, headers=owner.headers)
        assert created.status_code == 201, created.text
        resolved = created.json()
        assert resolved["question"] == UNANSWERABLE
        assert resolved["source"]["kind"] == "qa"
        wait_ready(client, owner, bot, resolved["source"]["id"])

        again = chat(client, owner, bot, UNANSWERABLE)
        assert again["answered"] is True, again
        assert "two days" in again["answer"]

        view = analytics(client, owner, bot, tz="Europe/Paris")
        assert view["totals"]["unanswered_resolved"] == 1
        (listed,) = view["unanswered_questions"]
        assert listed["resolved"] is True
        twice = assert_problem(
            client.post(url, json={"answer": answer}, headers=owner.headers), 409
        )
        assert resolved["source"]["id"] in twice["detail"]
        missing = f"/api/chatbots/{bot}/analytics/unanswered/nothing/answer"
        assert_problem(client.post(missing, json={"answer": answer}, headers=owner.headers), 404)
        stranger = sign_up(client)
        assert_problem(client.post(url, json={"answer": answer}, headers=stranger.headers), 404)
        check(api, bot)


def test_percentiles_from_the_latency_buckets_are_at_most_ten_percent_low() -> None:
    rng = random.Random(7)
    samples = [rng.randint(1, 30_000) for _ in range(5000)]
    histogram = Counter(latency_bucket(sample) for sample in samples)
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        estimate = histogram_percentile(histogram, q)
        assert estimate is not None
        assert exact * 0.9 < estimate <= exact
    assert [latency_bucket(v) for v in (7, 99, 100, 137, 999, 1234, 98_765)] == [
        7,
        99,
        100,
        130,
        990,
        1200,
        98_000,
    ]
