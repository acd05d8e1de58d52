"""Knowledge ingestion and grounded chat, end to end: HTTP, the real `botsmith worker`,
FerretDB and Redis."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Services, StartApi
from tests.support.api import (
    Account,
    add_text,
    assert_problem,
    bearer,
    create_api_key,
    create_chatbot,
    read_sse,
    sign_up,
    wait_ready,
)
from tests.support.documents import docx, html, pdf
from tests.support.processes import ApiServer, IngestionWorker, ManagedProcess, poll_until
from tests.support.site import Site

LIMITS = {
    "INGEST_URL_ALLOWLIST": "127.0.0.1",  # the test website; everything else private is refused
    "INGEST_MAX_FILE_BYTES": "200000",
    "INGEST_MAX_SOURCES_PER_BOT": "6",
    "INGEST_RECLAIM_SECONDS": "1",
}


@pytest.fixture(scope="module")
def knowledge_env(services: Services) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        # A stream of this module's own, so no other test's jobs are in it.
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
        **LIMITS,
    }


@pytest.fixture(scope="module")
def api(
    knowledge_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api"), knowledge_env, workers=2) as server:
        server.wait_ready()
        yield server


def without_redis(services: Services) -> dict[str, str]:
    """A fresh database and no Redis, so the API ingests in-process."""
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": "",
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
    }


def start_worker(env: dict[str, str], workdir: Path) -> ManagedProcess:
    worker = IngestionWorker(workdir, env)
    worker.start()
    return worker


@pytest.fixture(scope="module")
def worker(
    knowledge_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, api: ApiServer
) -> Iterator[ManagedProcess]:
    process = start_worker(knowledge_env, tmp_path_factory.mktemp("worker"))
    yield process
    process.stop()


@pytest.fixture
def owner(client: httpx.Client) -> Account:
    return sign_up(client)


def upload(
    client: httpx.Client, owner: Account, chatbot_id: str, name: str, data: bytes
) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{chatbot_id}/sources/file",
        files={"file": (name, data)},
        headers=owner.headers,
    )
    assert response.status_code == 202, response.text
    source: dict[str, Any] = response.json()
    assert source["status"] == "pending"
    return source


def ask(
    client: httpx.Client, headers: dict[str, str], chatbot_id: str, question: str
) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{chatbot_id}/chat", json={"message": question}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("worker")
def test_answers_come_from_uploaded_pdf_docx_and_html_and_cite_them(
    client: httpx.Client, owner: Account
) -> None:
    chatbot = create_chatbot(client, owner, name="Store assistant")
    bot = chatbot["id"]
    files = {
        "warranty.pdf": pdf(
            ["Warranty", "The warranty covers manufacturing defects for two years."]
        ),
        "care.docx": docx(
            "Care guide", {"Cleaning": "Clean the kettle with white vinegar once a month."}
        ),
        "delivery.html": html(
            "Delivery", {"Carriers": "Parcels travel with DHL Express to every country."}
        ),
    }
    sources = {name: upload(client, owner, bot, name, data) for name, data in files.items()}
    for name, source in sources.items():
        ready = wait_ready(client, owner, bot, source["id"])
        assert ready["status"] == "ready", (name, ready)
        assert ready["chunk_count"] >= 1
        assert ready["progress"] == {"percent": 100, "chunks": ready["chunk_count"], "pages": 1}

    cases = {
        "How long does the warranty cover defects?": ("warranty.pdf", "two years"),
        "How should I clean the kettle?": ("care.docx", "white vinegar"),
        "Which carrier delivers parcels?": ("delivery.html", "DHL Express"),
    }
    for question, (name, phrase) in cases.items():
        answer = ask(client, owner.headers, bot, question)
        assert answer["answered"] is True, (question, answer)
        assert phrase in answer["answer"]
        assert answer["sources"][0]["source_id"] == sources[name]["id"]
        assert "[1]" in answer["answer"]

    html_chunks = client.post(
        f"/api/chatbots/{bot}/retrieve",
        json={"query": "tracking Home About"},
        headers=owner.headers,
    ).json()["results"]
    assert all("tracking" not in hit["content"] for hit in html_chunks), (
        "scripts and nav are dropped"
    )


@pytest.mark.usefixtures("worker")
def test_a_question_outside_the_knowledge_gets_i_dont_know(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    add_text(client, owner, bot, "Hours", "The shop opens at nine in the morning on weekdays.")
    answer = ask(client, owner.headers, bot, "What is the capital of Mongolia?")
    assert answer["answered"] is False
    assert answer["answer"] == "I don't know the answer to that from the knowledge I have."
    assert answer["sources"] == []
    assert ask(client, owner.headers, bot, "When does the shop open?")["answered"] is True


@pytest.mark.usefixtures("worker")
def test_qa_pairs_each_become_a_chunk_and_the_stream_sends_events_in_order(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = client.post(
        f"/api/chatbots/{bot}/sources/qa",
        json={
            "pairs": [
                {
                    "question": "Do you offer gift wrapping?",
                    "answer": "Gift wrapping costs three euros per parcel.",
                },
                {
                    "question": "Can I pay by invoice?",
                    "answer": "Business customers can pay by invoice within 14 days.",
                },
            ]
        },
        headers=owner.headers,
    ).json()
    assert wait_ready(client, owner, bot, source["id"])["chunk_count"] == 2

    with client.stream(
        "POST",
        f"/api/chatbots/{bot}/chat",
        json={"message": "How much is gift wrapping?"},
        headers={**owner.headers, "Accept": "text/event-stream"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response)
    names = [name for name, _ in events]
    assert names[0] == "start"
    assert names[-2:] == ["sources", "end"]
    assert set(names[1:-2]) == {"token"}
    assert len(names) - 3 > 3, "tokens arrive one by one"
    text = "".join(data["text"] for name, data in events if name == "token")
    assert "three euros" in text
    assert events[-1][1]["message_id"] == events[0][1]["message_id"]
    assert events[-1][1]["answered"] is True


def _pending(queue: redis.Redis, stream: str) -> int:
    summary: dict[str, Any] = queue.xpending(stream, "ingest")  # type: ignore[assignment]
    return int(summary["pending"])


def test_a_job_whose_worker_died_is_reclaimed_and_processed_once(
    client: httpx.Client,
    owner: Account,
    knowledge_env: dict[str, str],
    services: Services,
    tmp_path: Path,
) -> None:
    env = {**knowledge_env, "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}"}
    with ApiServer(tmp_path / "api", env) as api_b, api_b.client() as other:
        api_b.wait_ready()
        bot = create_chatbot(other, owner)["id"]
        source = other.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": "Parking", "text": "Free parking is available behind the building."},
            headers=owner.headers,
        ).json()
    # A worker takes the job and dies before acknowledging it.
    queue = redis.Redis.from_url(services.redis_url)
    queue.xgroup_create(env["INGEST_STREAM"], "ingest", id="0", mkstream=True)
    taken: Any = queue.xreadgroup("ingest", "dead-worker", {env["INGEST_STREAM"]: ">"}, count=1)
    assert taken, "the job was not in the stream"
    assert taken[0][1][0][1][b"source_id"].decode() == source["id"]

    survivor = start_worker(env, tmp_path / "w")
    try:
        ready = wait_ready(client, owner, bot, source["id"])
        assert ready["status"] == "ready"
        poll_until(lambda: _pending(queue, env["INGEST_STREAM"]), lambda n: n == 0, 10)
        chunks = client.post(
            f"/api/chatbots/{bot}/retrieve", json={"query": "parking"}, headers=owner.headers
        ).json()["results"]
        # The same job delivered again (at least once) changes nothing.
        queue.xadd(env["INGEST_STREAM"], {"source_id": source["id"]})
        poll_until(lambda: _pending(queue, env["INGEST_STREAM"]), lambda n: n == 0, 10)
        again = client.post(
            f"/api/chatbots/{bot}/retrieve", json={"query": "parking"}, headers=owner.headers
        ).json()["results"]
        assert [c["chunk_id"] for c in again] == [c["chunk_id"] for c in chunks]
        assert len(again) == ready["chunk_count"] == 1
    finally:
        survivor.stop()
        queue.close()
    assert "reading" in survivor.output()


@pytest.mark.usefixtures("worker")
def test_deleting_a_source_removes_its_chunks_from_retrieval(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = add_text(client, owner, bot, "Pets", "Dogs on a leash are welcome in the garden.")
    url = f"/api/chatbots/{bot}/retrieve"
    assert client.post(url, json={"query": "dogs garden"}, headers=owner.headers).json()["results"]
    assert (
        client.delete(
            f"/api/chatbots/{bot}/sources/{source['id']}", headers=owner.headers
        ).status_code
        == 204
    )
    assert (
        client.post(url, json={"query": "dogs garden"}, headers=owner.headers).json()["results"]
        == []
    )
    assert_problem(
        client.get(f"/api/chatbots/{bot}/sources/{source['id']}", headers=owner.headers), 404
    )


def test_file_type_size_and_count_limits_are_clear_errors(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    url = f"/api/chatbots/{bot}/sources/file"
    body = assert_problem(
        client.post(url, files={"file": ("tool.exe", b"MZ")}, headers=owner.headers), 415
    )
    assert ".pdf" in body["detail"]
    too_big = b"x" * 200_001
    assert_problem(
        client.post(url, files={"file": ("big.txt", too_big)}, headers=owner.headers), 413
    )
    for n in range(6):
        created = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": f"t{n}", "text": "some words"},
            headers=owner.headers,
        )
        assert created.status_code == 202
    over = client.post(
        f"/api/chatbots/{bot}/sources/text", json={"title": "t", "text": "x"}, headers=owner.headers
    )
    assert "already has 6 sources" in assert_problem(over, 409)["detail"]


@pytest.mark.usefixtures("worker")
def test_a_damaged_pdf_fails_with_the_reason(client: httpx.Client, owner: Account) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = upload(client, owner, bot, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    failed = wait_ready(client, owner, bot, source["id"])
    assert failed["status"] == "failed"
    assert "broken.pdf" in failed["error"]


@pytest.mark.usefixtures("worker")
def test_a_bots_api_key_may_retrieve_and_chat_for_that_bot(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    add_text(client, owner, bot, "Phone", "Call support on weekdays between eight and six.")
    key = create_api_key(client, owner, bot)["key"]
    assert (
        client.post(
            f"/api/chatbots/{bot}/retrieve", json={"query": "call support"}, headers=bearer(key)
        ).status_code
        == 200
    )
    assert ask(client, {"X-API-Key": key}, bot, "When can I call support?")["answered"] is True
    assert_problem(client.get(f"/api/chatbots/{bot}/sources", headers=bearer(key)), 403)


def test_without_redis_the_api_ingests_in_process(services: Services, tmp_path: Path) -> None:
    with ApiServer(tmp_path, without_redis(services)) as solo, solo.client() as client:
        solo.wait_ready()
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": "Bikes", "text": "Bicycles can be rented at the front desk."},
            headers=owner.headers,
        ).json()
        assert wait_ready(client, owner, bot, source["id"])["status"] == "ready"
        assert ask(client, owner.headers, bot, "Where can I rent bicycles?")["answered"] is True


@pytest.mark.usefixtures("worker")
def test_conversations_are_listed_paged_rated_exported_and_deleted(
    client: httpx.Client, owner: Account
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = add_text(
        client, owner, bot, "Menu", "Breakfast is served from seven to ten. Lunch starts at noon."
    )
    first = ask(client, owner.headers, bot, "When is breakfast served?")
    conversation = first["conversation_id"]
    second = client.post(
        f"/api/chatbots/{bot}/chat",
        json={"message": "When does lunch start?", "conversation_id": conversation},
        headers=owner.headers,
    ).json()
    assert second["conversation_id"] == conversation
    ask(client, owner.headers, bot, "Do you serve dinner?")  # a second conversation

    listed = client.get(
        f"/api/chatbots/{bot}/conversations", params={"limit": 1}, headers=owner.headers
    ).json()
    assert len(listed["items"]) == 1
    assert listed["next_cursor"]
    rest = client.get(
        f"/api/chatbots/{bot}/conversations",
        params={"cursor": listed["next_cursor"]},
        headers=owner.headers,
    ).json()
    ids = [c["id"] for c in listed["items"] + rest["items"]]
    assert len(ids) == 2
    assert conversation in ids

    page = client.get(
        f"/api/chatbots/{bot}/conversations/{conversation}",
        params={"limit": 3},
        headers=owner.headers,
    ).json()
    assert [m["role"] for m in page["messages"]] == ["user", "assistant", "user"]
    assert page["conversation"]["message_count"] == 4
    more = client.get(
        f"/api/chatbots/{bot}/conversations/{conversation}",
        params={"after": page["next_after"]},
        headers=owner.headers,
    ).json()
    assert [m["id"] for m in more["messages"]] == [second["message_id"]]
    assert more["next_after"] is None
    assert more["messages"][0]["citations"][0]["source_id"] == source["id"]

    rated = client.post(
        f"/api/chatbots/{bot}/messages/{first['message_id']}/feedback",
        json={"rating": "down", "comment": "Too short"},
        headers=owner.headers,
    )
    assert rated.status_code == 200
    feedback = rated.json()["feedback"]
    assert (feedback["rating"], feedback["comment"]) == ("down", "Too short")
    assert feedback["at"] is not None  # when it was given
    assert_problem(
        client.post(
            f"/api/chatbots/{bot}/messages/nope/feedback",
            json={"rating": "up"},
            headers=owner.headers,
        ),
        404,
    )

    jsonl = client.get(f"/api/chatbots/{bot}/conversations/export", headers=owner.headers)
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(rows) == 6
    assert {row["rating"] for row in rows if row["id"] == first["message_id"]} == {"down"}
    csv_export = client.get(
        f"/api/chatbots/{bot}/conversations/export", params={"format": "csv"}, headers=owner.headers
    )
    assert csv_export.headers["content-type"].startswith("text/csv")
    lines = csv_export.text.strip().splitlines()
    assert lines[0] == "conversation_id,id,timestamp,role,content,answered,rating"
    assert len(lines) == 7

    assert (
        client.delete(
            f"/api/chatbots/{bot}/conversations/{conversation}", headers=owner.headers
        ).status_code
        == 204
    )
    assert_problem(
        client.get(f"/api/chatbots/{bot}/conversations/{conversation}", headers=owner.headers), 404
    )
    for stream in (False, True):
        unknown = client.post(
            f"/api/chatbots/{bot}/chat",
            json={"message": "hi", "conversation_id": conversation, "stream": stream},
            headers=owner.headers,
        )
        assert_problem(unknown, 404)


@pytest.mark.usefixtures("worker")
def test_the_widget_serves_public_bots_to_their_allowed_origins_only(
    client: httpx.Client, owner: Account
) -> None:
    shop = "https://shop.example.com"
    bot = create_chatbot(client, owner, visibility="public", allowed_origins=[shop])["id"]
    private_bot = create_chatbot(client, owner)["id"]
    add_text(client, owner, bot, "Sizes", "Our shoes run half a size small.")
    url = f"/api/public/chatbots/{bot}/chat"
    visitor = {"message": "Do the shoes run small?", "session_id": "visitor-1"}

    answered = client.post(url, json=visitor, headers={"Origin": shop})
    assert answered.status_code == 200
    assert answered.headers["Access-Control-Allow-Origin"] == shop
    assert answered.json()["answered"] is True

    preflight = client.options(
        url, headers={"Origin": shop, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == shop
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    assert_problem(client.post(url, json=visitor, headers={"Origin": "https://evil.example"}), 403)
    assert_problem(client.post(url, json={"message": "hi"}), 422)  # a visitor session is required
    assert_problem(client.post(f"/api/public/chatbots/{private_bot}/chat", json=visitor), 404)
    config = client.get(f"/api/public/chatbots/{bot}", headers={"Origin": shop}).json()
    assert {key: config[key] for key in ("id", "name", "welcome_message")} == {
        "id": bot,
        "name": "Support bot",
        "welcome_message": "Hi! How can I help?",
    }
    assert config["appearance"]["position"] == "bottom-right"  # the widget's defaults

    other_visitor = {
        **visitor,
        "session_id": "visitor-2",
        "conversation_id": answered.json()["conversation_id"],
    }
    assert_problem(client.post(url, json=other_visitor), 404)


def test_the_widget_has_its_own_stricter_rate_limit(start_api: StartApi) -> None:
    api = start_api(
        {"RATE_LIMIT_PUBLIC_PER_MINUTE": "2", "RATE_LIMIT_PER_MINUTE": "100"}, private_redis=True
    )
    with api.client() as client:
        api.wait_ready()
        url = "/api/public/chatbots/no-such-bot"
        assert [client.get(url).status_code for _ in range(3)] == [404, 404, 429]
        assert client.get("/api/health").status_code == 200


SITE = {
    "/": (
        "<html><head><title>Acme help</title></head><body><h1>Acme help centre</h1>"
        "<p>Start here for help with your Acme oven.</p>"
        "<a href='/guide/install'>Install</a> <a href='/guide/clean#top'>Clean</a>"
        "<a href='/blog/news'>News</a> <a href='/moved'>Moved</a>"
        "<a href='http://localhost:{port}/other-host'>Elsewhere</a></body></html>"
    ),
    "/guide/install": (
        "<html><head><title>Installing</title></head><body><h1>Installing the oven</h1>"
        "<p>Leave ten centimetres of space behind the oven for ventilation.</p>"
        "<a href='/guide/deep'>More</a></body></html>"
    ),
    "/guide/clean": (
        "<html><head><title>Cleaning</title></head><body><h1>Cleaning</h1>"
        "<p>Run the pyrolytic cleaning cycle once a month.</p></body></html>"
    ),
    "/guide/deep": "<html><body><p>Deep page beyond the depth limit.</p></body></html>",
    "/blog/news": "<html><body><p>Company news, excluded by pattern.</p></body></html>",
    "/sitemap.xml": (
        "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        "<url><loc>http://127.0.0.1:{port}/guide/install</loc></url>"
        "<url><loc>http://127.0.0.1:{port}/guide/clean</loc></url></urlset>"
    ),
}
# A redirect to another loopback address: private, and not on the allowlist.
REDIRECTS = {"/moved": "http://127.0.0.2:{port}/secret"}


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site(dict(SITE), REDIRECTS) as served:
        yield served


def add_url(client: httpx.Client, owner: Account, bot: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/chatbots/{bot}/sources/url", json=body, headers=owner.headers)


@pytest.mark.usefixtures("worker")
def test_a_same_site_crawl_follows_depth_patterns_and_origin_and_answers_with_the_page(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    created = add_url(
        client, owner, bot, url=site.base + "/", mode="crawl", max_depth=1, exclude=["^/blog"]
    )
    assert created.status_code == 202, created.text
    ready = wait_ready(client, owner, bot, created.json()["id"])
    assert ready["status"] == "ready", ready
    assert ready["progress"]["pages"] == 3
    assert "/guide/deep" not in site.hits, "beyond max_depth"
    assert "/blog/news" not in site.hits, "excluded by pattern"
    assert "/other-host" not in site.hits, "another origin"
    assert "/secret" not in site.hits

    answer = ask(
        client, owner.headers, bot, "How much space does the oven need behind it for ventilation?"
    )
    assert answer["answered"] is True
    assert "ten centimetres" in answer["answer"]
    assert answer["sources"][0]["url"] == site.base + "/guide/install"
    assert answer["sources"][0]["title"] == "Installing"


@pytest.mark.usefixtures("worker")
def test_a_sitemap_brings_the_pages_it_lists_and_an_unchanged_resync_rewrites_nothing(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = add_url(client, owner, bot, url=site.base + "/sitemap.xml", mode="sitemap").json()
    ready = wait_ready(client, owner, bot, source["id"])
    assert ready["progress"]["pages"] == 2
    query = {"query": "pyrolytic cleaning cycle"}
    before = client.post(f"/api/chatbots/{bot}/retrieve", json=query, headers=owner.headers).json()[
        "results"
    ]

    client.post(f"/api/chatbots/{bot}/sources/{source['id']}/resync", headers=owner.headers)
    poll_until(lambda: len([h for h in site.hits if h == "/sitemap.xml"]), lambda n: n >= 2, 10)
    wait_ready(client, owner, bot, source["id"])
    after = client.post(f"/api/chatbots/{bot}/retrieve", json=query, headers=owner.headers).json()[
        "results"
    ]
    assert [c["chunk_id"] for c in after] == [c["chunk_id"] for c in before]

    site.pages["/guide/clean"] = site.pages["/guide/clean"].replace("once a month", "every week")
    try:
        client.post(f"/api/chatbots/{bot}/sources/{source['id']}/resync", headers=owner.headers)
        changed = poll_until(
            lambda: client.post(
                f"/api/chatbots/{bot}/retrieve", json=query, headers=owner.headers
            ).json()["results"],
            lambda results: bool(results) and "every week" in results[0]["content"],
            15,
        )
        assert changed[0]["chunk_id"] != before[0]["chunk_id"]
    finally:
        site.pages["/guide/clean"] = SITE["/guide/clean"]


@pytest.mark.usefixtures("worker")
def test_a_redirect_to_a_private_address_fails_the_source_without_contacting_it(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = add_url(client, owner, bot, url=site.base + "/moved").json()
    failed = wait_ready(client, owner, bot, source["id"])
    assert failed["status"] == "failed"
    assert "127.0.0.2" in failed["error"]
    assert "loopback" in failed["error"]
    assert "/secret" not in site.hits


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/admin", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("file:///etc/passwd", None),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_unsafe_urls_are_refused_when_submitted(
    client: httpx.Client, owner: Account, url: str, reason: str | None
) -> None:
    bot = create_chatbot(client, owner)["id"]
    body = assert_problem(add_url(client, owner, bot, url=url), 422)
    if reason is not None:
        assert reason in body["detail"]


def test_loopback_is_refused_without_the_allowlist(
    services: Services, site: Site, tmp_path: Path
) -> None:
    with ApiServer(tmp_path, without_redis(services)) as plain, plain.client() as client:
        plain.wait_ready()
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        refused = add_url(client, owner, bot, url=site.base + "/")
        assert "loopback" in assert_problem(refused, 422)["detail"]
        named = add_url(client, owner, bot, url=f"http://localhost:{site.port}/")
        assert "loopback" in assert_problem(named, 422)["detail"]
    assert site.hits.count("/") <= 1  # only the crawl test above fetched it


def test_bad_crawl_patterns_are_422(client: httpx.Client, owner: Account) -> None:
    bot = create_chatbot(client, owner)["id"]
    body = assert_problem(
        add_url(client, owner, bot, url="https://example.com/", include=["(unclosed"]), 422
    )
    assert body["errors"][0]["field"].startswith("include")


def test_patterns_without_an_re2_meaning_are_422(client: httpx.Client, owner: Account) -> None:
    bot = create_chatbot(client, owner)["id"]
    for pattern in (r"^/(a)\1$", r"^/docs(?=/)"):
        body = assert_problem(
            add_url(client, owner, bot, url="https://example.com/", exclude=[pattern]), 422
        )
        assert body["errors"][0]["field"].startswith("exclude")
        assert "RE2" in body["errors"][0]["message"]


@pytest.mark.usefixtures("worker")
def test_a_catastrophic_backtracking_pattern_is_matched_in_linear_time(
    client: httpx.Client, owner: Account
) -> None:
    # Python's backtracking engine takes about 2**40 steps to reject this path with this
    # pattern; RE2 takes one pass.
    trap = "/" + "a" * 40 + "!"
    pages = {
        "/": f'<html><title>Home</title><body><p>The shop opens at nine.</p><a href="{trap}">'
        "more</a></body></html>",
        trap: "<html><title>Trap</title><body><p>Nothing here.</p></body></html>",
    }
    bot = create_chatbot(client, owner)["id"]
    with Site(pages) as site:
        created = add_url(
            client,
            owner,
            bot,
            url=site.base + "/",
            mode="crawl",
            max_depth=1,
            include=[r"^/(a+)+$", r"^/$"],
        )
        assert created.status_code == 202, created.text
        ready = wait_ready(client, owner, bot, created.json()["id"])
        assert ready["status"] == "ready", ready
        assert trap not in site.hits, "the trap path does not match and is not fetched"


def test_a_source_that_overruns_its_time_budget_fails_with_the_reason(
    services: Services, tmp_path: Path
) -> None:
    env = {**without_redis(services), "INGEST_JOB_TIMEOUT_SECONDS": "0.01"}
    text = "\n\n".join(f"Paragraph {n} says something about kettles." for n in range(20_000))
    with ApiServer(tmp_path, env) as solo, solo.client() as client:
        solo.wait_ready()
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": "Long", "text": text},
            headers=owner.headers,
        ).json()
        failed = wait_ready(client, owner, bot, source["id"])
        assert failed["status"] == "failed"
        assert "INGEST_JOB_TIMEOUT_SECONDS" in failed["error"]
        assert client.get("/livez").status_code == 200
