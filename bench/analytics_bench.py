"""Analytics for a bot with 100,000 messages over 30 days: p95 response time, cold and cached.

Run with `make bench-analytics` (or `.venv/bin/python bench/analytics_bench.py`). It starts the
bench FerretDB and Redis and the API (`botsmith serve`, 2 workers), seeds one bot with
conversations and messages spread over 30 days, and times GET /api/chatbots/{id}/analytics:
cold (each request a new range, so nothing is cached) and cached (the same range again).
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

import httpx
from common import percentile, start_services, stop_services
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
PORT = 8104
QUESTIONS = [
    f"how do i {verb} my {thing}"
    for verb in ("return", "track", "change", "cancel")
    for thing in ("order", "parcel", "address", "account", "card")
]


def seed(
    mongo_url: str, db_name: str, chatbot_id: str, messages: int, end: datetime.datetime
) -> None:
    rng = random.Random(3)
    db = MongoClient(mongo_url)[db_name]
    conversations, rows = [], []
    per_conversation = 10
    for n in range(messages // per_conversation):
        started = end - datetime.timedelta(seconds=rng.uniform(0, 30 * 86400))
        conversation_id = uuid.uuid4().hex
        conversations.append(
            {
                "id": conversation_id,
                "chatbot_id": chatbot_id,
                "user_id": "bench",
                "session_id": f"s{n % 3000}",
                "started_at": started,
                "last_message_at": started,
                "message_count": per_conversation,
            }
        )
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
    db.conversations.insert_many(conversations)
    for start in range(0, len(rows), 5000):
        db.messages.insert_many(rows[start : start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--cold", type=int, default=10)
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
            started = time.perf_counter()
            seed(services["MONGO_URL"], db_name, bot, args.messages, end)
            seeded_in = time.perf_counter() - started

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
            first, body = timed(end + datetime.timedelta(seconds=1))
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
                f"over 30 days (seeded in {seeded_in:.0f} s); GET /api/chatbots/{{id}}/analytics, 30 days, "
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
