"""Analytics against a seeded bot: every figure is recomputed here from the seed. The seed is
written straight to the database, as data stored before rollups existed, and
`botsmith analytics backfill` builds the rollups the endpoint reads."""

import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pymongo import MongoClient

from tests.conftest import StartApi
from tests.support.api import (
    Account,
    analytics_command,
    assert_problem,
    create_admin,
    create_chatbot,
    login,
    sign_up,
)
from tests.support.processes import ApiServer


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (conversation, session, started) and
# (conversation, time, role, content, answered, latency, rating)
CONVERSATIONS = [
    ("c1", "s1", at("2026-03-01T22:30:00")),
    ("c2", "s1", at("2026-03-01T23:30:00")),  # 00:30 on March 2nd in Berlin
    ("c3", "s2", at("2026-03-03T10:00:00")),
    ("c4", None, at("2026-03-03T11:00:00")),
]
MESSAGES = [
    ("c1", at("2026-03-01T22:30:05"), "user", "How do I return an item?", None, None, None),
    ("c1", at("2026-03-01T22:30:06"), "assistant", "Within 30 days [1]", True, 100, "up"),
    ("c2", at("2026-03-01T23:30:05"), "user", "how do I RETURN an item", None, None, None),
    ("c2", at("2026-03-01T23:30:06"), "assistant", "I don't know", False, 200, None),
    ("c3", at("2026-03-03T10:00:05"), "user", "Where is my parcel?", None, None, None),
    ("c3", at("2026-03-03T10:00:06"), "assistant", "On its way [1]", True, 300, "down"),
    ("c3", at("2026-03-03T10:01:00"), "user", "How do I return an item?", None, None, None),
    ("c3", at("2026-03-03T10:01:01"), "assistant", "Within 30 days [1]", True, 400, None),
    ("c4", at("2026-03-03T11:00:05"), "user", "Do you sell gift cards?", None, None, None),
    ("c4", at("2026-03-03T11:00:06"), "assistant", "I don't know", False, 500, None),
]
START, END = "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z"
Seeded = tuple[ApiServer, httpx.Client, Account, str]


def seed(api: ApiServer, chatbot_id: str) -> None:
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        db = mongo[api.env["DB_NAME"]]
        db.conversations.insert_many(
            [
                {
                    "id": f"{chatbot_id}-{c}",
                    "chatbot_id": chatbot_id,
                    "user_id": "x",
                    "session_id": s,
                    "started_at": t,
                    "last_message_at": t,
                    "message_count": 0,
                }
                for c, s, t in CONVERSATIONS
            ]
        )
        messages = []
        for c, t, role, content, answered, latency, rating in MESSAGES:
            message: dict[str, Any] = {
                "id": uuid.uuid4().hex,
                "conversation_id": f"{chatbot_id}-{c}",
                "chatbot_id": chatbot_id,
                "role": role,
                "content": content,
                "timestamp": t,
            }
            if role == "assistant":
                message |= {"answered": answered, "latency_ms": latency}
            if rating:
                message["feedback"] = {"rating": rating}
            messages.append(message)
        db.messages.insert_many(messages)
    backfilled = analytics_command(api.env, "backfill", chatbot_id)
    assert backfilled.returncode == 0, backfilled.stderr


def expected_series(zone: ZoneInfo, days: list[str]) -> list[tuple[str, int, int, int]]:
    """(local date, conversations, messages, unique visitors) per local day, from the seed."""
    rows = []
    for day in days:
        started = [c for c in CONVERSATIONS if c[2].astimezone(zone).date().isoformat() == day]
        sent = [m for m in MESSAGES if m[1].astimezone(zone).date().isoformat() == day]
        rows.append((day, len(started), len(sent), len({c[1] or c[0] for c in started})))
    return rows


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def series(body: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    return [
        (b["start"][:10], b["conversations"], b["messages"], b["unique_visitors"])
        for b in body["series"]
    ]


@pytest.fixture
def seeded(start_api: StartApi) -> Iterator[Seeded]:
    api = start_api({"ANALYTICS_MAX_DAYS": "400"})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        seed(api, bot)
        yield api, client, owner, bot


def test_every_figure_matches_the_seed_in_utc_and_in_berlin(seeded: Seeded) -> None:
    _, client, owner, bot = seeded
    url = f"/api/chatbots/{bot}/analytics"
    utc = client.get(url, params={"from": START, "to": END}, headers=owner.headers)
    assert utc.status_code == 200, utc.text
    body = utc.json()

    answers = [m for m in MESSAGES if m[2] == "assistant"]
    latencies = sorted(float(m[5] or 0) for m in answers)

    def nearest(q: float) -> float:
        return latencies[math.ceil(q * len(latencies)) - 1]

    ups = sum(m[6] == "up" for m in answers)
    downs = sum(m[6] == "down" for m in answers)
    assert body["totals"] == {
        "conversations": len(CONVERSATIONS),
        "messages": len(MESSAGES),
        "unique_visitors": len({c[1] or c[0] for c in CONVERSATIONS}),
        "avg_messages_per_conversation": len(MESSAGES) / len(CONVERSATIONS),
        "answer_latency_ms_p50": nearest(0.5),
        "answer_latency_ms_p95": nearest(0.95),
        "feedback_up": ups,
        "feedback_down": downs,
        "feedback_ratio": ups / (ups + downs),
        "idk_rate": sum(m[4] is False for m in answers) / len(answers),
        "leads": 0,
        "unanswered_resolved": 0,
    }
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert series(body) == expected_series(ZoneInfo("UTC"), days), "empty days are zeros"

    questions = Counter(normalise(m[3]) for m in MESSAGES if m[2] == "user")
    assert body["top_questions"][0] == {
        "question": "how do i return an item",
        "count": questions["how do i return an item"],
    }
    assert {q["question"]: q["count"] for q in body["top_questions"]} == dict(questions)
    assert {q["question"]: q["reasons"] for q in body["unanswered_questions"]} == {
        "how do i return an item": ["no_answer"],
        "where is my parcel": ["thumbs_down"],
        "do you sell gift cards": ["no_answer"],
    }

    berlin = client.get(
        url, params={"from": START, "to": END, "tz": "Europe/Berlin"}, headers=owner.headers
    ).json()
    assert berlin["timezone"] == "Europe/Berlin"
    assert berlin["series"][0]["start"] == "2026-03-01T00:00:00+01:00"
    local_days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert series(berlin) == expected_series(ZoneInfo("Europe/Berlin"), local_days)
    assert series(berlin)[1][1] == 1, "23:30 UTC on March 1st is March 2nd in Berlin"

    hourly = client.get(
        url,
        params={"from": "2026-03-03T09:00:00Z", "to": "2026-03-03T12:00:00Z", "interval": "hour"},
        headers=owner.headers,
    ).json()
    assert [b["messages"] for b in hourly["series"]] == [0, 4, 2]


def test_results_are_cached_for_the_cache_ttl(seeded: Seeded) -> None:
    api, client, owner, bot = seeded
    url = f"/api/chatbots/{bot}/analytics"
    params = {"from": START, "to": END}
    first = client.get(url, params=params, headers=owner.headers).json()
    late: dict[str, Any] = {
        "id": "late",
        "conversation_id": f"{bot}-c1",
        "chatbot_id": bot,
        "role": "user",
        "content": "late",
        "timestamp": at("2026-03-01T23:00:00"),
    }
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        mongo[api.env["DB_NAME"]].messages.insert_one(late)
    assert analytics_command(api.env, "backfill", bot).returncode == 0
    assert client.get(url, params=params, headers=owner.headers).json() == first
    hourly = client.get(url, params={**params, "interval": "hour"}, headers=owner.headers).json()
    assert hourly["totals"]["messages"] == len(MESSAGES) + 1


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "longer than 400 days"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "before"),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "interval": "hour"},
            "buckets",
        ),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-05T00:00:00Z"}, "between the years"),
        ({"to": "0001-01-05T00:00:00Z"}, "between the years"),
        ({"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, "between the years"),
    ],
)
def test_bad_ranges_are_422(seeded: Seeded, params: dict[str, str], detail: str) -> None:
    _, client, owner, bot = seeded
    response = client.get(f"/api/chatbots/{bot}/analytics", params=params, headers=owner.headers)
    assert detail in assert_problem(response, 422)["detail"]


def test_admin_stats_give_platform_totals_and_daily_series(seeded: Seeded) -> None:
    api, client, owner, _ = seeded
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    assert create_admin(api.env, email).returncode == 0
    headers = {"Authorization": f"Bearer {login(client, email)['access_token']}"}
    today = datetime.now(UTC)
    params = {"from": START, "to": (today + timedelta(days=1)).isoformat()}
    stats = client.get("/api/admin/stats", params=params, headers=headers)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["totals"] == {"users": 2, "chatbots": 1, "conversations": 4, "messages": 10}
    by_day = {row["day"][:10]: row for row in body["series"]}
    assert (by_day["2026-03-01"]["conversations"], by_day["2026-03-01"]["messages"]) == (2, 4)
    assert (by_day["2026-03-02"]["conversations"], by_day["2026-03-02"]["messages"]) == (0, 0)
    now = by_day[today.date().isoformat()]
    assert (now["signups"], now["active_users"], now["chatbots"]) == (2, 2, 1)
    assert_problem(client.get("/api/admin/stats", headers=owner.headers), 403)
