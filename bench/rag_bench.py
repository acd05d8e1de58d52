"""Answer quality on public documentation: ten pages of the PostgreSQL 15 manual (Debian's
postgresql-doc-15) and the question set in bench/rag, through the product as an owner uses it.

Run with `make bench-rag` (or `.venv/bin/python bench/rag_bench.py`). It starts the bench
FerretDB and Redis, the API (`botsmith serve`) and an ingestion worker (`botsmith worker`);
signs up, creates a bot with the default settings, uploads the pages as HTML files, waits for
them to be ready, and runs the question set as an evaluation run executed by the worker. It
prints the run's summary and the threshold trade-off (answered rate against the "I don't know"
rate as score_threshold moves), computed from each case's confidence, and writes the whole run
to bench/results/rag.json. Everything is offline: no model and no embeddings endpoint.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.common import start_services  # noqa: E402
from bench.rag.dataset import load_cases, page_paths  # noqa: E402

RESULTS = BENCH / "results"
VENV_BIN = ROOT / ".venv/bin"
THRESHOLDS = [round(0.3 + 0.05 * step, 2) for step in range(11)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _poll(probe: Any, done: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not finish within {timeout:g} s (last: {result!r})")
        time.sleep(0.5)


def _case(case: dict[str, Any]) -> dict[str, Any]:
    if case.get("unanswerable"):
        return {"question": case["question"], "unanswerable": True}
    return {"question": case["question"], "evidence": case["evidence"]}


def _upload(client: httpx.Client, headers: dict[str, str], bot: str, pages: list[Path]) -> None:
    sources = []
    for page in pages:
        response = client.post(
            f"/api/chatbots/{bot}/sources/file",
            files={"file": (page.name, page.read_bytes(), "text/html")},
            headers=headers,
        )
        response.raise_for_status()
        sources.append(response.json()["id"])

    def statuses() -> list[str]:
        return [
            client.get(f"/api/chatbots/{bot}/sources/{s}", headers=headers).json()["status"]
            for s in sources
        ]

    found = _poll(statuses, lambda s: all(x in ("ready", "failed") for x in s), 600, "ingestion")
    if "failed" in found:
        sys.exit(f"a page failed to ingest: {found}")


def _trade_off(results: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    answerable = [r["confidence"] for r in results if r["hit"] is not None]
    unanswerable = [r["confidence"] for r in results if r["hit"] is None]
    return [
        (
            threshold,
            sum(c >= threshold for c in answerable) / len(answerable),
            sum(c < threshold for c in unanswerable) / len(unanswerable),
        )
        for threshold in THRESHOLDS
    ]


def run(cases_file: Path) -> dict[str, Any]:
    pages = page_paths()
    missing = [page for page in pages if not page.exists()]
    if missing:
        sys.exit(f"{missing[0]} is missing: apt-get install postgresql-doc-15 (make bench-rag)")
    cases = load_cases(cases_file)
    services = start_services()
    port = _free_port()
    env = {
        **os.environ,
        "MONGO_URL": services["MONGO_URL"],
        "REDIS_URL": services["REDIS_URL"],
        "JWT_SECRET": services["JWT_SECRET"],
        "DB_NAME": f"bench_rag_{int(time.time())}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "UVICORN_WORKERS": "1",
        "LOG_LEVEL": "warning",
        "WORKER_METRICS_PORT": "0",
        "RATE_LIMIT_PER_MINUTE": "1000000",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / "rag.log").open("wb")
    processes = [
        subprocess.Popen([str(VENV_BIN / "botsmith"), command], env=env, stdout=log, stderr=log)
        for command in ("serve", "worker")
    ]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _poll(lambda: _status(client, "/readyz"), lambda s: s == 200, 90, "the API start")
            email = f"bench-rag-{int(time.time())}@example.com"
            password = "bench-password-1"
            client.post("/api/auth/register", json={"email": email, "password": password})
            token = client.post(
                "/api/auth/login", json={"email": email, "password": password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            bot = client.post("/api/chatbots", json={"name": "Docs"}, headers=headers).json()
            started = time.perf_counter()
            _upload(client, headers, bot["id"], pages)
            ingest_s = time.perf_counter() - started
            queued = client.post(
                f"/api/chatbots/{bot['id']}/eval/runs",
                json={"cases": [_case(case) for case in cases], "label": "bench-rag"},
                headers=headers,
            )
            queued.raise_for_status()
            url = f"/api/chatbots/{bot['id']}/eval/runs/{queued.json()['id']}"
            finished = _poll(
                lambda: client.get(url, headers=headers).json(),
                lambda r: r["status"] in ("done", "failed"),
                900,
                "the evaluation run",
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        log.close()
    if finished["status"] != "done":
        sys.exit(f"the run failed: {finished.get('error')}")
    finished["ingest_seconds"] = round(ingest_s, 1)
    return dict(finished)


def _status(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.HTTPError:
        return 0


def report(run: dict[str, Any]) -> str:
    summary, settings = run["summary"], run["settings"]
    lines = [
        f"{summary['cases']} cases ({summary['answerable']} answerable, "
        f"{summary['unanswerable']} unanswerable); top_k {settings['top_k']}, "
        f"score_threshold {settings['score_threshold']}; pages ingested in "
        f"{run['ingest_seconds']} s",
        "",
        f"{'metric':<26}{'value':>8}",
    ]
    for metric in (
        "recall_at_k",
        "mrr",
        "answered_rate",
        "idk_rate",
        "citation_accuracy",
        "evidence_in_answer_rate",
        "p95_latency_ms",
    ):
        value = summary[metric]
        shown = "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else value)
        lines.append(f"{metric:<26}{shown:>8}")
    lines += ["", "threshold  answered  i-don't-know"]
    for threshold, answered, idk in _trade_off(run["results"]):
        mark = "  <- default" if threshold == settings["score_threshold"] else ""
        lines.append(f"{threshold:>9.2f}  {answered:>8.2f}  {idk:>12.2f}{mark}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=Path, default=BENCH / "rag/cases.json")
    args = parser.parse_args()
    finished = run(args.cases)
    (RESULTS / "rag.json").write_text(json.dumps(finished, indent=1, default=str))
    print(report(finished))


if __name__ == "__main__":
    main()
