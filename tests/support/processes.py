"""Real processes for tests: the API under gunicorn, and private FerretDB and Redis instances."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The signing secret of the APIs that tests start (there is no built-in one).
TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-the-checks"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


class ManagedProcess:
    """A child process with its output in a log file, stopped (and reaped) on exit."""

    def __init__(self, argv: list[str], log_path: Path, env: Mapping[str, str]) -> None:
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ListeningProcess(ManagedProcess):
    """A server on `self.port` (a free loopback port); start() returns once it accepts
    connections."""

    port: int

    def start(self) -> None:
        super().start()
        wait_for_port(self.port)


class FerretDB(ListeningProcess):
    """A private FerretDB on its own port and data directory, for tests that stop the database."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        argv = [binary, "-listen-addr", f"127.0.0.1:{self.port}", "-data-dir", str(workdir / "db")]
        super().__init__(argv, workdir / "ferretdb.log", os.environ)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"


class RedisServer(ListeningProcess):
    """A private Redis on its own port, for tests that stop Redis; `options` are more of
    redis-server's command-line options."""

    def __init__(self, workdir: Path, options: Sequence[str] = ()) -> None:
        self.port = free_port()
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            *options,
        ]
        super().__init__(argv, workdir / "redis.log", os.environ)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class IngestionWorker(ManagedProcess):
    """``botsmith worker`` with the environment of the API it serves and its own metrics port."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.metrics_port = free_port()
        worker_env = {
            **os.environ,
            "JWT_SECRET": TEST_JWT_SECRET,
            **env,
            "WORKER_METRICS_PORT": str(self.metrics_port),
        }
        super().__init__([str(VENV_BIN / "botsmith"), "worker"], workdir / "worker.log", worker_env)


class ApiServer(ManagedProcess):
    """``botsmith serve`` as a user starts it: gunicorn with uvicorn workers on a free port."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str], app: str | None = None, workers: int = 1
    ) -> None:
        self.port = free_port()
        self.metrics_dir = workdir / "metrics"
        server_env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "JWT_SECRET": TEST_JWT_SECRET,
            "UVICORN_WORKERS": str(workers),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            # Generous limits: tests of the limits themselves set their own.
            **{
                f"RATE_LIMIT_{kind}PER_{unit}": "1000000"
                for kind in ("", "LOGIN_", "PUBLIC_")
                for unit in ("MINUTE", "HOUR")
            },
            **env,
        }
        argv = [str(VENV_BIN / "botsmith"), "serve"] + (["--app", app] if app else [])
        super().__init__(argv, workdir / "api.log", server_env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 30
        with self.client(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the API exited early:\n{self.output()}")
                try:
                    if client.get("/livez").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the API did not answer /livez within 30 s:\n{self.output()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Waits until /readyz says ready (indexes created, services reachable)."""
        with self.client(timeout=2) as client:
            poll_until(lambda: client.get("/readyz").status_code, lambda code: code == 200, timeout)

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return {int(pid) for pid in children}


@contextlib.contextmanager
def two_apis_and_a_worker(
    env: Mapping[str, str], first_dir: Path, second_dir: Path
) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two `botsmith serve` processes and a `botsmith worker` with one environment (one
    database, one Redis), as pods would be; ready when entered."""
    with (
        ApiServer(first_dir, env) as first,
        ApiServer(second_dir, env) as second,
        IngestionWorker(first_dir, first.env),
    ):
        first.wait_ready()
        second.wait_ready()
        yield first, second


def poll_until[T](probe: Callable[[], T], accept: Callable[[T], bool], timeout: float) -> T:
    """Calls probe until accept(result) holds, returning that result; raises on timeout."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not accept(result):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s; last result {result!r}")
        time.sleep(0.2)
        result = probe()
    return result
