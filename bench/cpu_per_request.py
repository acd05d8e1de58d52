"""CPU time per request of the hottest routes (health, the authenticated cached chatbot read) for
one or more source trees, alternating between them: a change's cost without trusting throughput
on a shared machine.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/cpu_per_request.py /tmp/before . --rounds 5

Each round starts `botsmith serve` with one worker from each tree (on the bench FerretDB and
Redis), warms it, drives each route with wrk (16 connections, 8 s) and divides the worker's CPU
seconds (utime + stime from /proc) by the requests served.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import start_services, stop_services

PORT = 8131


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(master: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return int(out.split()[0])


def _wrk(url: str, headers: list[str]) -> int:
    argv = ["wrk", "-t1", "-c16", "-d8s", *[a for h in headers for a in ("-H", h)], url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) requests in", out)
    assert found, out
    return int(found[1])


def measure(tree: Path, services: dict[str, str], db_name: str) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "UVICORN_WORKERS": "1",
        "HOST": "127.0.0.1",
        "PORT": str(PORT),
        "LOG_LEVEL": "warning",
        "GUNICORN_MAX_REQUESTS": "0",
        "MONGO_URL": services["MONGO_URL"],
        "REDIS_URL": services["REDIS_URL"],
        "JWT_SECRET": services["JWT_SECRET"],
        "DB_NAME": db_name,
        "RATE_LIMIT_PER_MINUTE": "1000000000",
        "RATE_LIMIT_PER_HOUR": "1000000000",
    }
    binary = Path(sys.executable).parent / "botsmith"
    server = subprocess.Popen(
        [str(binary), "serve"],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        with httpx.Client(base_url=base) as client:
            account = {"email": "cpu@example.com", "password": "bench-password"}
            client.post("/api/auth/register", json=account)
            token = client.post("/api/auth/login", json=account).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            bot = client.post("/api/chatbots", json={"name": "bench"}, headers=auth).json()["id"]
        worker = _worker(server.pid)
        routes = {
            "health": (f"{base}/api/health", []),
            "read": (f"{base}/api/chatbots/{bot}", [f"Authorization: Bearer {token}"]),
        }
        result = {}
        for name, (url, headers) in routes.items():
            _wrk(url, headers)  # warm-up
            before = _cpu_seconds(worker)
            served = _wrk(url, headers)
            result[name] = (_cpu_seconds(worker) - before) / served * 1e6
        return result
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    services = start_services()
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        for round_number in range(args.rounds):
            for index, tree in enumerate(args.trees):
                measured = measure(tree.resolve(), services, f"bench_cpu_{round_number}_{index}")
                for route, micros in measured.items():
                    samples.setdefault((str(tree), route), []).append(micros)
    finally:
        stop_services()
    print("| tree | route | µs CPU per request, each round | median |")
    print("|---|---|---|---:|")
    for (tree, route), values in samples.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {tree} | {route} | {rounds} | {sorted(values)[len(values) // 2]:.0f} |")


if __name__ == "__main__":
    main()
