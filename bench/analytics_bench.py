"""Analytics for a bot with 100,000 (or 1,000,000) messages over 30 days: p95 response time,
cold and cached.

Run with `make bench-analytics` (`ARGS="--messages 1000000"` for the larger bot). It starts the
bench FerretDB and Redis and the API (`botsmith serve`, 2 workers), seeds one bot with
conversations and messages spread over 30 days plus the hourly rollups they make (computed with
the chat turn's own functions, stored as `botsmith analytics backfill` stores them), and times
GET /api/chatbots/{id}/analytics: cold (each request a new range, so nothing is cached) and
cached (the same range again).
"""

import argparse
import datetime
import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
from common import percentile, start_services, stop_services
from pymongo import MongoClient

from app.chat.activity import conversation_change, message_change
from app.core.rollups import COLLECTION, HourTally, compacted_documents, hour_of

ROOT = Path(__file__).resolve().parents[1]
PORT = 8104
QUESTIONS = [
    f"how do i {verb} my {thing}"
    for verb in ("return", "track", "change", "cancel")
    for thing in ("order", "parcel", "address", "account", "card")
]


def _turns(
    chatbot_id: str, messages: int, end: datetime.datetime
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(conversation, its messages) for `messages` messages over the 30 days before `end`."""
    rng = random.Random(3)
    per_conversation = 10
    for n in range(messages // per_conversation):
        started = end - datetime.timedelta(seconds=rng.uniform(0, 30 * 86400))
        conversation_id = uuid.uuid4().hex
        conversation = {
            "id": conversation_id,
            "chatbot_id": chatbot_id,
            "user_id": "bench",
            "session_id": f"s{n % 3000}",
            "started_at": started,
            "last_message_at": started,
            "message_count": per_conversation,
        }
        rows: list[dict[str, Any]] = []
        for turn in range(per_conversation // 2):
            asked = started + datetime.timedelta(seconds=turn * 30)
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "conversation_id": conversation_id,
                    "chatbot_id": chatbot_id,
                    "role": "user",
                    "content": rng.choice(QUESTIONS),
                    "timestamp": asked,
                }
            )
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "conversation_id": conversation_id,
                    "chatbot_id": chatbot_id,
                    "role": "assistant",
                    "content": "answer",
                    "answered": rng.random() > 0.1,
                    "latency_ms": rng.randint(5, 900),
                    "timestamp": asked + datetime.timedelta(seconds=1),
                    **(
                        {"feedback": {"rating": rng.choice(["up", "down"])}}
                        if rng.random() < 0.05
                        else {}
                    ),
                }
            )
        yield conversation, rows


def seed(
    mongo_url: str,
    db_name: str,
    chatbot_id: str,
    messages: int,
    end: datetime.datetime,
    *,
    raw: bool,
) -> tuple[float, float]:
    """Stores the raw conversations and messages (unless `raw` is false) and the hourly rollups
    they make, computed with the functions the chat turn records with and stored as
    `botsmith analytics backfill` stores them (one document per UTC day); returns (raw seconds, rollup seconds)."""
    db = MongoClient(mongo_url)[db_name]
    hours: defaultdict[datetime.datetime, HourTally] = defaultdict(HourTally)
    conversations: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    raw_seconds = 0.0
    started = time.perf_counter()

    def flush() -> None:
        nonlocal raw_seconds
        t0 = time.perf_counter()
        if raw and conversations:
            db.conversations.insert_many(conversations)
        if raw and rows:
            db.messages.insert_many(rows)
        raw_seconds += time.perf_counter() - t0
        conversations.clear()
        rows.clear()

    for conversation, turns in _turns(chatbot_id, messages, end):
        hours[hour_of(conversation["started_at"])].merge(conversation_change(conversation))
        question = None
        for row in turns:
            if row["role"] == "user":
                question = row["content"]
            change = message_change(row, None if row["role"] == "user" else question)
            hours[hour_of(row["timestamp"])].merge(change)
        conversations.append(conversation)
        rows += turns
        if len(rows) >= 20_000:
            flush()
    flush()
    db[COLLECTION].insert_many(compacted_documents(chatbot_id, hours))
    return raw_seconds, time.perf_counter() - started - raw_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="100000 (default) or 1000000")
    parser.add_argument(
        "--rollups-only",
        action="store_true",
        help="seed the rollups without the raw messages (the endpoint reads only the rollups)",
    )
    parser.add_argument("--cold", type=int, default=20)
    parser.add_argument("--cached", type=int, default=100)
    args = parser.parse_args()
    services = start_services()
    db_name = f"bench_analytics_{int(time.time())}"
    env = {
        **os.environ,
        "MONGO_URL": services["MONGO_URL"],
        "REDIS_URL": services["REDIS_URL"],
        "JWT_SECRET": services["JWT_SECRET"],
        "DB_NAME": db_name,
        "UVICORN_WORKERS": "2",
        "HOST": "127.0.0.1",
        "PORT": str(PORT),
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_ENABLED": "false",
        "REQUEST_TIMEOUT": "120",
    }
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/botsmith"), "serve"],
        env=env,
        cwd=ROOT,
        stdout=(ROOT / "bench/results/analytics-server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=300) as client:
            for _ in range(100):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            client.post(
                "/api/auth/register",
                json={"email": "bench@example.com", "password": "bench-password"},
            )
            token = client.post(
                "/api/auth/login", json={"email": "bench@example.com", "password": "bench-password"}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            bot = client.post("/api/chatbots", json={"name": "bench"}, headers=headers).json()["id"]
            end = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            raw_seconds, rollup_seconds = seed(
                services["MONGO_URL"], db_name, bot, args.messages, end, raw=not args.rollups_only
            )

            def timed(to: datetime.datetime) -> tuple[float, dict]:
                params = {
                    "from": (to - datetime.timedelta(days=30)).isoformat(),
                    "to": to.isoformat(),
                    "tz": "Europe/Berlin",
                }
                t0 = time.perf_counter()
                response = client.get(
                    f"/api/chatbots/{bot}/analytics", params=params, headers=headers
                )
                response.raise_for_status()
                return (time.perf_counter() - t0) * 1000, response.json()

            cold = [timed(end + datetime.timedelta(seconds=n + 1))[0] for n in range(args.cold)]
            _, body = timed(end + datetime.timedelta(seconds=1))
            cached = [timed(end + datetime.timedelta(seconds=1))[0] for _ in range(args.cached)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        stop_services()

    report = (
        "\n".join(
            [
                f"# Analytics benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
                "",
                f"One bot, {body['totals']['messages']:,} messages in {body['totals']['conversations']:,} conversations "
                f"over 30 days; raw messages stored in {raw_seconds:.0f} s"
                f"{' (skipped: --rollups-only)' if args.rollups_only else ''}, hourly rollups computed and "
                f"stored in {rollup_seconds:.1f} s; GET /api/chatbots/{{id}}/analytics, 30 days, "
                "daily buckets in Europe/Berlin; 2 workers, FerretDB and Redis on the same 2 cores.",
                "",
                "| request | n | p50 ms | p95 ms |",
                "|---|---:|---:|---:|",
                f"| cold (new range each time) | {len(cold)} | {statistics.median(cold):,.0f} | {percentile(cold, 0.95):,.0f} |",
                f"| cached (same range) | {len(cached)} | {statistics.median(cached):,.1f} | {percentile(cached, 0.95):,.1f} |",
            ]
        )
        + "\n"
    )
    (
        ROOT / "bench/results" / f"analytics-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}.md"
    ).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
