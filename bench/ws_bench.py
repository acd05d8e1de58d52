"""WebSocket benchmark: hold 10,000 connections (server RSS), and broadcast events to 1,000
subscribers spread over 2 workers (delivery latency p50/p95/p99).

Run with `make bench-ws` (or `.venv/bin/python bench/ws_bench.py [--connections N]`). It
starts the bench FerretDB and Redis and the API (`botsmith serve`, 2 workers) on loopback, raises
the open-file limit for itself and the server, and drives them with the websockets client.
"""

import argparse
import asyncio
import datetime
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis.asyncio as redis
from common import percentile, start_services, stop_services
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
PORT = 8103


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _server_rss_mb(master: int) -> tuple[float, list[float]]:
    children = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    workers = [_rss_mb(pid) for pid in children]
    return _rss_mb(master) + sum(workers), workers


async def _open(url: str, count: int, parallel: int = 200) -> list[ClientConnection]:
    gate = asyncio.Semaphore(parallel)
    sockets: list[ClientConnection] = []

    async def one() -> None:
        async with gate:
            ws = await connect(url, open_timeout=60, ping_interval=None, max_queue=None)
            await ws.recv()  # welcome
            sockets.append(ws)

    await asyncio.gather(*(one() for _ in range(count)))
    return sockets


async def run(connections: int, subscribers: int, rounds: int) -> str:
    services = start_services()
    env = {
        **os.environ,
        "MONGO_URL": services["MONGO_URL"],
        "REDIS_URL": services["REDIS_URL"],
        "JWT_SECRET": services["JWT_SECRET"],
        "DB_NAME": f"bench_ws_{int(time.time())}",
        "UVICORN_WORKERS": "2",
        "HOST": "127.0.0.1",
        "PORT": str(PORT),
        "LOG_LEVEL": "warning",
        "GUNICORN_MAX_REQUESTS": "0",
        "WEBSOCKET_MAX_PER_USER": str(connections),
        "RATE_LIMIT_ENABLED": "false",
    }
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/botsmith"), "serve"],
        env=env,
        cwd=ROOT,
        stdout=(ROOT / "bench/results/ws-server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(100):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)
            email = f"ws-{int(time.time())}@example.com"
            await http.post(
                "/api/auth/register", json={"email": email, "password": "bench-password"}
            )
            login = await http.post(
                "/api/auth/login", json={"email": email, "password": "bench-password"}
            )
            token = login.json()["access_token"]
            me = (
                await http.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
            ).json()
        url = f"ws://127.0.0.1:{PORT}/api/ws?token={token}"
        idle_total, idle_workers = _server_rss_mb(server.pid)

        started = time.perf_counter()
        sockets = await _open(url, connections)
        opened_in = time.perf_counter() - started
        await asyncio.sleep(5)
        held_total, held_workers = _server_rss_mb(server.pid)
        alive = sum(1 for ws in sockets if ws.state.name == "OPEN")

        # Broadcast: the first `subscribers` sockets subscribe to notifications.
        listeners = sockets[:subscribers]
        for ws in listeners:
            await ws.send(json.dumps({"type": "subscribe", "topic": "notifications"}))
        for ws in listeners:
            await ws.recv()
        publisher = redis.Redis.from_url(services["REDIS_URL"])
        latencies: list[float] = []

        async def listen(ws: ClientConnection) -> None:
            message = json.loads(await ws.recv())
            latencies.append((time.time() - message["data"]["t"]) * 1000)

        for _ in range(rounds):
            receivers = [asyncio.create_task(listen(ws)) for ws in listeners]
            await asyncio.sleep(0.2)
            await publisher.publish(
                f"botsmith:events:user:{me['id']}", json.dumps({"type": "bench", "t": time.time()})
            )
            await asyncio.wait_for(asyncio.gather(*receivers), 30)
        await publisher.aclose()
        for ws in sockets:
            await ws.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    return (
        "\n".join(
            [
                f"# WebSocket benchmark, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
                "",
                "2 CPUs; API with 2 workers; client and server on loopback.",
                "",
                "| measure | value |",
                "|---|---|",
                f"| connections opened / still open after 5 s | {connections:,} / {alive:,} (in {opened_in:.1f} s) |",
                f"| server RSS idle (master + workers) | {idle_total:.0f} MB ({', '.join(f'{w:.0f}' for w in idle_workers)}) |",
                f"| server RSS holding them | {held_total:.0f} MB ({', '.join(f'{w:.0f}' for w in held_workers)}) |",
                f"| broadcast: subscribers × rounds | {subscribers:,} × {rounds} = {len(latencies):,} deliveries |",
                f"| delivery latency p50 / p95 / p99 | {statistics.median(latencies):.1f} / {percentile(latencies, 0.95):.1f} / {percentile(latencies, 0.99):.1f} ms |",
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1_048_576), hard))
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(run(args.connections, args.subscribers, args.rounds))
    finally:
        stop_services()
    path = ROOT / "bench/results" / f"ws-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}.md"
    path.write_text(report)
    print(report)


if __name__ == "__main__":
    sys.exit(main())
