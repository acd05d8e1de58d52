"""Fixtures: the real local services (FerretDB, Redis) and the API started as a user starts it."""

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, ApiServer, FerretDB, RedisServer


@dataclass(frozen=True)
class Services:
    mongo_url: str
    redis_url: str
    ferretdb_bin: str


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return dict(pairs)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio, as the service does."""
    return "asyncio"


@pytest.fixture(scope="session")
def services() -> Services:
    """The shared test instances; started by scripts/services.sh unless the caller already did."""
    env: Mapping[str, str] = os.environ
    if not {"MONGO_URL", "REDIS_URL", "FERRETDB_BIN"} <= env.keys():
        subprocess.run([str(ROOT / "scripts/services.sh"), "start", "test"], check=True)
        env = _read_env_file(ROOT / ".run/test/env")
    return Services(env["MONGO_URL"], env["REDIS_URL"], env["FERRETDB_BIN"])


@pytest.fixture
def db_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def base_env(services: Services, db_name: str) -> dict[str, str]:
    return {"MONGO_URL": services.mongo_url, "REDIS_URL": services.redis_url, "DB_NAME": db_name}


StartApi = Callable[..., ApiServer]


@pytest.fixture
def start_api(tmp_path: Path, base_env: dict[str, str]) -> Iterator[StartApi]:
    """Starts ``botsmith serve`` with the test services plus the given environment overrides."""
    started: list[ApiServer] = []
    helpers: list[RedisServer] = []

    def start(
        env: Mapping[str, str] | None = None,
        *,
        app: str | None = None,
        workers: int = 1,
        private_redis: bool = False,
    ) -> ApiServer:
        """private_redis: a Redis of its own, for tests whose counters must start at zero."""
        workdir = tmp_path / f"api{len(started)}"
        workdir.mkdir()
        server_env = {**base_env, **(env or {})}
        if private_redis:
            redis = RedisServer(workdir)
            redis.start()
            helpers.append(redis)
            server_env["REDIS_URL"] = redis.url
        server = ApiServer(workdir, server_env, app=app, workers=workers)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
    for helper in helpers:
        helper.stop()


@pytest.fixture(scope="module")
def api(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One API (two workers, real Redis) shared by a module's tests, on a database of its own."""
    workdir = tmp_path_factory.mktemp("api")
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
    }
    with ApiServer(workdir, env, workers=2) as server:
        server.wait_ready()
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


@pytest.fixture
def private_ferretdb(services: Services, tmp_path: Path) -> Iterator[FerretDB]:
    """A FerretDB of this test's own, which the test may stop and start again."""
    with FerretDB(services.ferretdb_bin, tmp_path) as ferretdb:
        yield ferretdb


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which the test may stop and start again."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    with RedisServer(workdir) as redis:
        yield redis


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of the test module's own: its tests may read, remove or restart its keys and
    leases without touching other modules'."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as redis:
        yield redis
