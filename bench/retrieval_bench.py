"""Ingestion throughput and retrieval latency at 1,000, 10,000 and 100,000 chunks in one bot.

Run with `make bench-retrieval` (or `.venv/bin/python bench/retrieval_bench.py [--sizes ...]`).
It starts the bench FerretDB, and drives the product's own code: IngestionPipeline.process
(extract, chunk, index segments, store) and RetrievalService.retrieve, on a synthetic corpus
with a Zipf-like vocabulary so postings look like real text, with Redis as deployed (it holds a
copy of the index segments). It measures: ingestion; a fresh process's first question (it loads
every segment); warm questions; and the first question after each of 20 knowledge changes (a
small source added while the process holds the index).
"""

import argparse
import asyncio
import datetime
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.indexes import ensure_indexes  # noqa: E402
from app.core.resources import close_resources, open_resources  # noqa: E402
from app.core.security import new_id, utcnow  # noqa: E402
from app.retrieval.service import RetrievalIndexes, RetrievalService  # noqa: E402
from app.sources.pipeline import IngestionPipeline  # noqa: E402
from common import percentile, start_services, stop_services  # noqa: E402

WORDS = [f"w{n}" for n in range(20_000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]
CHUNK_CHARS = 1000
CHANGES = 20  # knowledge changes after which the first question is timed


def corpus(chunks: int, rng: random.Random) -> str:
    """Paragraphs of about CHUNK_CHARS characters under headings, one chunk each."""
    sections = []
    for n in range(chunks):
        words = rng.choices(WORDS, WEIGHTS, k=150)
        sections.append(f"# Section {n}\n" + " ".join(words) + ".")
    return "\n\n".join(sections)


async def run(sizes: list[int], queries: int) -> list[str]:
    env = start_services()
    settings = Settings(
        mongo_url=env["MONGO_URL"],  # type: ignore[arg-type]
        redis_url=env["REDIS_URL"],  # type: ignore[arg-type]
        jwt_secret=env["JWT_SECRET"],  # type: ignore[arg-type]
        db_name=f"bench_retrieval_{int(time.time())}",
        ingest_max_chars_per_bot=10**10,
        cache_enabled=False,  # the chatbot cache: every question reads the bot as stored
    )
    resources = open_resources(settings)  # Redis holds the index segments' copy, as deployed
    db = resources.db
    await ensure_indexes(db)
    rng = random.Random(7)
    rows = []
    service = IngestionPipeline.over(resources)
    for size in sizes:
        chatbot = {
            "id": new_id(),
            "user_id": "bench",
            "name": "bench",
            "status": "active",
            "retrieval": {
                "top_k": 4,
                "score_threshold": 0.2,
                "chunk_size": CHUNK_CHARS + 200,
                "chunk_overlap": 0,
            },
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        await db["chatbots"].insert_one(dict(chatbot))
        # Sources of at most 10,000 chunks: a MongoDB document holds at most 16 MB.
        ingest_seconds = 0.0
        for part in range(0, size, 10_000):
            started = time.perf_counter()
            await add_source(db, service, chatbot["id"], corpus(min(10_000, size - part), rng))
            ingest_seconds += time.perf_counter() - started
        stored = await db["chunks"].count_documents({"chatbot_id": chatbot["id"]})

        retrieval = RetrievalService.over(resources, RetrievalIndexes())
        fresh = await db["chatbots"].find_one({"id": chatbot["id"]}, {"_id": 0})
        assert fresh is not None
        started = time.perf_counter()
        await retrieval.retrieve(fresh, "w1 w2")
        cold_ms = (time.perf_counter() - started) * 1000
        latencies = []
        for _ in range(queries):
            query = " ".join(rng.choices(WORDS[:2000], k=6))
            started = time.perf_counter()
            await retrieval.retrieve(fresh, query)
            latencies.append((time.perf_counter() - started) * 1000)
        after_change = []
        for _ in range(CHANGES):
            await add_source(db, service, chatbot["id"], corpus(5, rng))
            changed = await db["chatbots"].find_one({"id": chatbot["id"]}, {"_id": 0})
            assert changed is not None
            started = time.perf_counter()
            await retrieval.retrieve(changed, " ".join(rng.choices(WORDS[:2000], k=6)))
            after_change.append((time.perf_counter() - started) * 1000)
        p50 = statistics.median(latencies)
        p95 = percentile(latencies, 0.95)
        rows.append(
            f"| {stored:,} | {ingest_seconds:.1f} | {stored / ingest_seconds:,.0f} | "
            f"{cold_ms:,.0f} | {percentile(after_change, 0.95):.1f} | {p50:.1f} | {p95:.1f} |"
        )
        print(rows[-1], flush=True)
    await resources.mongo.drop_database(settings.db_name)
    await close_resources(resources)
    stop_services()
    return rows


async def add_source(db: Any, pipeline: IngestionPipeline, chatbot_id: str, text: str) -> None:
    """A text source stored as the API stores it, then processed as the worker does."""
    source_id = new_id()
    await db["sources"].insert_one(
        {
            "id": source_id,
            "chatbot_id": chatbot_id,
            "user_id": "bench",
            "kind": "text",
            "title": "bench",
            "text": text,
            "file": None,
            "crawl": None,
            "content_hash": source_id,
            "processed_hash": None,
            "status": "pending",
            "error": None,
            "progress": {},
            "char_count": len(text),
            "chunk_count": 0,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
    )
    await pipeline.process(source_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows = asyncio.run(run(args.sizes, args.queries))
    report = (
        "\n".join(
            [
                f"# Retrieval benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
                "",
                "| chunks | ingest s | chunks/s | fresh process, first question ms "
                "| first question after a change, p95 ms | p50 ms (warm) | p95 ms (warm) |",
                "|---:|---:|---:|---:|---:|---:|---:|",
                *rows,
            ]
        )
        + "\n"
    )
    out = (
        ROOT / "bench/results" / f"retrieval-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
