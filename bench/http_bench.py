"""HTTP benchmark: the product against a minimal baseline app, in one run on one machine.

Run with `make bench-http` (or `.venv/bin/python bench/http_bench.py [--quick]`). It starts the
bench FerretDB and Redis, the baseline and the product under the same gunicorn settings, drives
them with wrk on loopback and writes a results table to bench/results/.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import start_services, stop_services

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
VEGETA = ROOT / ".cache" / "bin" / "vegeta"
WORKERS = 2
OPEN_LOOP_SHARE = 0.70  # of the capacity measured with 64 connections


@dataclass
class Run:
    name: str
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    socket_errors: int


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(name: str, url: str, connections: int, seconds: int, headers: list[str]) -> Run:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(BENCH / "stats.lua")]
    for header in headers:
        argv += ["-H", header]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    run = Run(
        name=name,
        requests_per_second=result["requests"] / result["seconds"],
        p50_ms=result["p50_ms"],
        p95_ms=result["p95_ms"],
        p99_ms=result["p99_ms"],
        statuses=result["statuses"],
        socket_errors=result["socket_errors"],
    )
    print(
        f"  {name}: {run.requests_per_second:,.0f} req/s, p95 {run.p95_ms:.1f} ms, {run.statuses}"
    )
    return run


def vegeta(name: str, url: str, rate: int, seconds: int, headers: list[str]) -> Run:
    """An open-loop run: `rate` requests a second on schedule, whether or not earlier ones have
    been answered, so a slow response shows in the latency of every request it delays (wrk's
    closed loop waits instead, and hides that: coordinated omission). Rate 0 measures vegeta's
    own capacity instead: as fast as 64 workers get answers."""
    attack = [str(VEGETA), "attack", f"-rate={rate}/s", f"-duration={seconds}s", "-timeout=10s"]
    if rate == 0:
        attack.append("-max-workers=64")
    for header in headers:
        attack += ["-header", header]
    results = subprocess.run(
        attack, input=f"GET {url}\n".encode(), capture_output=True, check=True
    ).stdout
    report = json.loads(
        subprocess.run(
            [str(VEGETA), "report", "-type=json"], input=results, capture_output=True, check=True
        ).stdout
    )
    latencies = report["latencies"]
    run = Run(
        name=name,
        requests_per_second=report["throughput"],
        p50_ms=latencies["50th"] / 1e6,
        p95_ms=latencies["95th"] / 1e6,
        p99_ms=latencies["99th"] / 1e6,
        statuses=report["status_codes"],
        socket_errors=sum(1 for error in report.get("errors") or [] if "status" not in error),
    )
    print(
        f"  {name}: {run.requests_per_second:,.0f} req/s, p99 {run.p99_ms:.1f} ms, {run.statuses}"
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, to check the script")
    args = parser.parse_args()
    short, long = (3, 5) if args.quick else (20, 60)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench-http does it)")
    if not VEGETA.exists():
        sys.exit("vegeta is not built: bash scripts/bootstrap.sh bench (make bench-http does it)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    services = start_services()
    RESULTS.mkdir(parents=True, exist_ok=True)
    common = {
        **os.environ,
        "UVICORN_WORKERS": str(WORKERS),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        "GUNICORN_MAX_REQUESTS": "0",  # no worker recycling in the middle of a measurement
        "JWT_SECRET": services["JWT_SECRET"],
    }
    baseline_env = {**common, "PORT": "8101"}
    product_env = {
        **common,
        "PORT": "8102",
        "MONGO_URL": services["MONGO_URL"],
        "REDIS_URL": services["REDIS_URL"],
        "DB_NAME": "bench",
        # Limits raised for the run: this measures throughput, not refusals.
        "RATE_LIMIT_PER_MINUTE": "1000000000",
        "RATE_LIMIT_PER_HOUR": "1000000000",
    }
    gunicorn = [str(VENV_BIN / "gunicorn"), "--config", "python:app.gunicorn_conf"]
    baseline = _start(
        [*gunicorn, "--chdir", str(BENCH), "baseline_app:app"],
        baseline_env,
        RESULTS / "baseline.log",
    )
    product = _start([str(VENV_BIN / "botsmith"), "serve"], product_env, RESULTS / "product.log")
    try:
        _wait("http://127.0.0.1:8101/api/health")
        _wait("http://127.0.0.1:8102/readyz")
        with httpx.Client(base_url="http://127.0.0.1:8102") as client:
            email = f"bench-{int(time.time())}@example.com"
            client.post("/api/auth/register", json={"email": email, "password": "bench-password"})
            token = client.post(
                "/api/auth/login", json={"email": email, "password": "bench-password"}
            ).json()["access_token"]
            auth = f"Authorization: Bearer {token}"
            chatbot = client.post(
                "/api/chatbots",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
        bot_path = f"/api/chatbots/{chatbot['id']}"

        print("throughput (64 connections):")
        runs = {
            "baseline_health": wrk(
                "baseline GET /api/health", "http://127.0.0.1:8101/api/health", 64, short, []
            ),
            "product_health": wrk(
                "product GET /api/health", "http://127.0.0.1:8102/api/health", 64, short, []
            ),
            "baseline_read": wrk(
                "baseline GET /api/chatbots/{id}", f"http://127.0.0.1:8101{bot_path}", 64, short, []
            ),
            "product_read": wrk(
                "product GET /api/chatbots/{id} (auth, cached)",
                f"http://127.0.0.1:8102{bot_path}",
                64,
                short,
                [auth],
            ),
        }
        # vegeta costs the shared cores more than wrk, so its own measure of the capacity is the
        # one the open-loop rate is a share of.
        print(f"open loop at {OPEN_LOOP_SHARE:.0%} of the capacity measured with vegeta:")
        for route, url, headers in (
            ("health", "http://127.0.0.1:8102/api/health", []),
            ("read", f"http://127.0.0.1:8102{bot_path}", [auth]),
        ):
            what = runs[f"product_{route}"].name.removeprefix("product ")
            capacity = vegeta(f"product {what}, vegeta, 64 workers", url, 0, short, headers)
            runs[f"capacity_{route}"] = capacity
            rate = int(OPEN_LOOP_SHARE * capacity.requests_per_second)
            runs[f"open_{route}"] = vegeta(
                f"product {what}, open loop at {rate:,} req/s", url, rate, short, headers
            )
        print("1,000 concurrent connections:")
        runs["c1000_health"] = wrk(
            "product GET /api/health", "http://127.0.0.1:8102/api/health", 1000, long, []
        )
        runs["c1000_read"] = wrk(
            "product GET /api/chatbots/{id}", f"http://127.0.0.1:8102{bot_path}", 1000, long, [auth]
        )
        worker_rss = [_rss_mb(pid) for pid in _children(product.pid)]
    finally:
        _stop(baseline)
        _stop(product)
        stop_services()

    health_ratio = (
        runs["product_health"].requests_per_second / runs["baseline_health"].requests_per_second
    )
    read_ratio = (
        runs["product_read"].requests_per_second / runs["baseline_read"].requests_per_second
    )
    lines = [
        f"# HTTP benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{os.cpu_count()} CPUs, {WORKERS} gunicorn workers each, wrk on the same machine (loopback).",
        "",
        "| run | req/s | p50 ms | p95 ms | p99 ms | statuses | socket errors |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for run in runs.values():
        lines.append(
            f"| {run.name} | {run.requests_per_second:,.0f} | {run.p50_ms:.1f} | {run.p95_ms:.1f} | "
            f"{run.p99_ms:.1f} | {run.statuses} | {run.socket_errors} |"
        )
    lines += [
        "",
        f"- health vs baseline: **{health_ratio:.2f}** (target ≥ 0.70)",
        f"- authenticated cached read vs baseline: **{read_ratio:.2f}** (target ≥ 0.50)",
        f"- 1,000 connections, p95: health {runs['c1000_health'].p95_ms:.0f} ms, "
        f"cached read {runs['c1000_read'].p95_ms:.0f} ms (target < 500 ms)",
        f"- open loop at {OPEN_LOOP_SHARE:.0%} of the measured capacity, p99: health "
        f"{runs['open_health'].p99_ms:.0f} ms, cached read {runs['open_read'].p99_ms:.0f} ms "
        "(target < 100 ms)",
        f"- worker RSS after the run: {', '.join(f'{rss:.0f} MB' for rss in worker_rss)} (target < 300 MB)",
    ]
    report = "\n".join(lines) + "\n"
    path = RESULTS / f"http-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}.md"
    path.write_text(report)
    print()
    print(report)
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
