"""Request bodies and uploaded files are bounded: oversized or endless bodies get 413 before
they are read whole, a zip bomb fails its source, and a file that makes its extraction exceed
the memory limit fails its source while the worker carries on."""

import http.client
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Services, StartApi
from tests.support.api import Account, assert_problem, create_chatbot, sign_up, wait_ready
from tests.support.documents import docx
from tests.support.processes import ApiServer, IngestionWorker, poll_until

MIB = 1024 * 1024
UPLOAD_LIMIT = 3 * MIB
# Above what extracting an ordinary document takes (about 70 MiB with the parsers loaded), far
# below what the long document below needs (over 200 MiB).
TINY_MEMORY_LIMIT = 100 * MIB
LIMITS = {
    "INGEST_MAX_FILE_BYTES": str(UPLOAD_LIMIT),
    "INGEST_EXTRACT_MAX_MEMORY_BYTES": str(TINY_MEMORY_LIMIT),
}
TOO_LARGE = "The request body is larger than"


@pytest.fixture(scope="module")
def limits_env(services: Services) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
        **LIMITS,
    }


@pytest.fixture(scope="module")
def api(
    limits_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api"), limits_env) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def worker(
    limits_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, api: ApiServer
) -> Iterator[IngestionWorker]:
    with IngestionWorker(tmp_path_factory.mktemp("worker"), limits_env) as process:
        yield process


@pytest.fixture
def owner(client: httpx.Client) -> Account:
    return sign_up(client)


def upload(client: httpx.Client, owner: Account, bot: str, name: str, data: bytes) -> Any:
    return client.post(
        f"/api/chatbots/{bot}/sources/file", files={"file": (name, data)}, headers=owner.headers
    )


def uploaded(client: httpx.Client, owner: Account, bot: str, name: str, data: bytes) -> str:
    response = upload(client, owner, bot, name, data)
    assert response.status_code == 202, response.text
    source_id: str = response.json()["id"]
    return source_id


def zip_bomb_docx(inflated_bytes: int) -> bytes:
    """A .docx-named zip whose document part inflates from a few hundred kilobytes to
    `inflated_bytes` (zeros compress about a thousand to one)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = bytes(MIB)
            for _ in range(inflated_bytes // MIB):
                part.write(block)
    return out.getvalue()


def long_docx(paragraphs: int, paragraph_bytes: int) -> bytes:
    """A valid .docx of a few kilobytes compressed whose paragraphs hold `paragraph_bytes` of
    four-byte characters each: its text takes hundreds of megabytes to extract."""
    word = "\U0001f375 ".encode()
    placeholders = {f"Part {n}": f"PLACEHOLDER{n}" for n in range(paragraphs)}
    source = zipfile.ZipFile(io.BytesIO(docx("Tea", placeholders)))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "word/document.xml":
                for n in range(paragraphs):
                    text = word * (paragraph_bytes // len(word))
                    data = data.replace(f"PLACEHOLDER{n}<".encode(), text + b"<")
            archive.writestr(entry.filename, data)
    return out.getvalue()


def _pending(queue: redis.Redis, stream: str) -> int:
    summary: Any = queue.xpending(stream, "ingest")
    return int(summary["pending"])


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str | None
    body: str


def post_declaring(api: ApiServer, path: str, declared: int, sent: int) -> Answer:
    """Declares a body of `declared` bytes, sends only `sent` of them, and reads the answer: one
    arrives only if the server answers without waiting for the rest."""
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(declared))
        connection.endheaders()
        connection.send(b"x" * sent)
        response = connection.getresponse()
        body = response.read().decode()
        return Answer(response.status, response.getheader("content-type"), body)
    finally:
        connection.close()


def test_a_30_mb_login_body_is_refused_before_it_is_read(
    api: ApiServer, client: httpx.Client
) -> None:
    response = post_declaring(api, "/api/auth/login", 30 * MIB, 64 * 1024)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert TOO_LARGE in response.body

    whole = client.post(
        "/api/auth/login", content=bytes(30 * MIB), headers={"Content-Type": "application/json"}
    )
    assert assert_problem(whole, 413)["detail"] == f"{TOO_LARGE} {MIB} bytes"


def test_a_chunked_body_over_the_limit_is_refused(client: httpx.Client) -> None:
    def endless() -> Iterator[bytes]:
        # No Content-Length: only counting what arrives can stop it.
        for _ in range(64):
            yield bytes(64 * 1024)

    response = client.post(
        "/api/auth/login", content=endless(), headers={"Content-Type": "application/json"}
    )
    assert "transfer-encoding" in response.request.headers
    assert TOO_LARGE in assert_problem(response, 413)["detail"]


def test_requests_within_the_limit_work_as_before(client: httpx.Client) -> None:
    owner = sign_up(client)  # registration and login
    bot = create_chatbot(client, owner)
    assert client.get(f"/api/chatbots/{bot['id']}", headers=owner.headers).status_code == 200


def test_an_upload_between_the_request_and_upload_limits_is_accepted(
    api: ApiServer, client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    between = ("Tea is steeped for three minutes.\n" * (2 * MIB // 34)).encode()
    assert MIB < len(between) < UPLOAD_LIMIT
    assert upload(client, owner, bot, "tea.txt", between).status_code == 202

    # Text sent as JSON takes the same limit: a long text in Cyrillic is two bytes a letter.
    text = "чай заваривают три минуты. " * (1_000_000 // 27)
    body = {"title": "Чай", "text": text}
    assert MIB < len(json.dumps(body, ensure_ascii=False).encode()) < UPLOAD_LIMIT
    added = client.post(f"/api/chatbots/{bot}/sources/text", json=body, headers=owner.headers)
    assert added.status_code == 202, added.text

    over = upload(client, owner, bot, "tea.txt", bytes(UPLOAD_LIMIT + 128 * 1024))
    assert TOO_LARGE in assert_problem(over, 413)["detail"]
    declared = post_declaring(api, f"/api/chatbots/{bot}/sources/file", 30 * MIB, 64 * 1024)
    assert declared.status == 413


@pytest.mark.usefixtures("worker")
def test_a_zip_bomb_docx_fails_with_the_reason(client: httpx.Client, owner: Account) -> None:
    bot = create_chatbot(client, owner)["id"]
    bomb = zip_bomb_docx(235 * MIB)
    assert len(bomb) < 300 * 1024
    failed = wait_ready(client, owner, bot, uploaded(client, owner, bot, "report.docx", bomb))
    assert failed["status"] == "failed"
    assert "INGEST_MAX_EXTRACTED_BYTES" in failed["error"]
    assert "report.docx expands to more than" in failed["error"]


def test_an_extraction_over_its_memory_limit_fails_and_the_worker_goes_on(
    worker: IngestionWorker, client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    heavy = uploaded(client, owner, bot, "long.docx", long_docx(4, 8 * MIB))
    failed = wait_ready(client, owner, bot, heavy)
    assert failed["status"] == "failed"
    assert "extraction exceeded its memory limit" in failed["error"]

    assert worker.process is not None
    assert worker.process.poll() is None
    care = docx("Care guide", {"Cleaning": "Rinse the teapot with warm water."})
    ready = wait_ready(client, owner, bot, uploaded(client, owner, bot, "care.docx", care))
    assert ready["status"] == "ready", ready
    assert worker.process.poll() is None
    # Failed once and for all: the job was acknowledged, not left to be claimed again.
    assert worker.output().count(f"processing source {heavy}") == 1


def test_without_redis_an_extraction_over_its_memory_limit_fails_the_source_only(
    services: Services, tmp_path: Path
) -> None:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": "",
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        **LIMITS,
    }
    with ApiServer(tmp_path, env) as solo, solo.client() as client:
        solo.wait_ready()
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        heavy = uploaded(client, owner, bot, "long.docx", long_docx(4, 8 * MIB))
        failed = wait_ready(client, owner, bot, heavy)
        assert failed["status"] == "failed"
        assert "extraction exceeded its memory limit" in failed["error"]
        care = docx("Care guide", {"Cleaning": "Rinse the teapot with warm water."})
        ready = wait_ready(client, owner, bot, uploaded(client, owner, bot, "care.docx", care))
        assert ready["status"] == "ready", ready


def test_a_source_job_that_stopped_its_workers_three_times_fails_instead_of_a_fourth(
    start_api: StartApi, services: Services, tmp_path: Path
) -> None:
    stream = f"test:ingest:{uuid.uuid4().hex[:8]}"
    api = start_api({"INGEST_STREAM": stream, "INGEST_RECLAIM_SECONDS": "1"})
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": "Parking", "text": "Free parking is behind the building."},
            headers=owner.headers,
        ).json()
        # Three workers take the job in turn, and each dies before acknowledging it.
        queue = redis.Redis.from_url(services.redis_url)
        try:
            queue.xgroup_create(stream, "ingest", id="0", mkstream=True)
            taken: Any = queue.xreadgroup("ingest", "dead-1", {stream: ">"}, count=1)
            message_id = taken[0][1][0][0]
            for consumer in ("dead-2", "dead-3"):
                queue.xclaim(stream, "ingest", consumer, min_idle_time=0, message_ids=[message_id])
            with IngestionWorker(tmp_path, api.env) as worker:
                failed = wait_ready(client, owner, bot, source["id"])
                assert failed["status"] == "failed"
                assert failed["error"] == "processing this source stopped its worker 3 times"
                poll_until(lambda: _pending(queue, stream), lambda n: n == 0, 10)
            assert f"processing source {source['id']}" not in worker.output()
        finally:
            queue.close()
