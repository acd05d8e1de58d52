"""Scheduled refreshes of URL sources, end to end: two real `botsmith worker` processes, the API,
FerretDB, Redis, a website on loopback that answers conditional requests, and an embeddings
endpoint that records what it is asked to embed. SOURCE_REFRESH_PERIOD_SCALE shortens the
periods (hourly: 6 s) so that a refresh comes within the test."""

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Services
from tests.support.api import Account, assert_problem, create_chatbot, sign_up, wait_ready
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.metrics import value
from tests.support.processes import ApiServer, IngestionWorker, RedisServer, poll_until
from tests.support.site import Site

SCALE = 1 / 600
HOUR = 3600 * SCALE  # 6 s
WEEK = 7 * 24 * 3600 * SCALE
REFRESH_TIMEOUT = 60.0


def _page(title: str, text: str) -> str:
    head = f"<head><title>{title}</title></head>"
    return f"<html>{head}<body><h1>{title}</h1><p>{text}</p></body></html>"


PAGES = {
    "/hours": _page("Opening hours", "The oven shop opens at nine and closes at six."),
    "/menu": _page("Menu", "The oven bakery sells rye bread and cinnamon buns."),
    "/gone": _page("Delivery", "The oven store delivers on Tuesdays."),
    "/guide/install": _page("Installing", "Leave ten centimetres behind the oven for air."),
    "/guide/clean": _page("Cleaning", "Run the pyrolytic oven cleaning cycle once a month."),
    "/docs/": (
        "<html><head><title>Docs</title></head><body><p>Oven documentation.</p>"
        '<a href="/docs/a">A</a> <a href="/docs/b">B</a></body></html>'
    ),
    "/docs/a": _page("Racks", "The oven has three racks."),
    "/docs/b": _page("Lamp", "The oven lamp takes a 25 W bulb."),
    "/sitemap.xml": (
        "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        "<url><loc>http://127.0.0.1:{port}/guide/install</loc></url>"
        "<url><loc>http://127.0.0.1:{port}/guide/clean</loc></url></urlset>"
    ),
}


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site(dict(PAGES)) as served:
        served.etags.update({path: f'"{path}-v1"' for path in PAGES if path != "/sitemap.xml"})
        yield served


@pytest.fixture(scope="module")
def embeddings() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as fake:
        yield fake


@pytest.fixture(scope="module")
def env(
    services: Services, embeddings: FakeEmbeddings, module_redis: RedisServer
) -> dict[str, str]:
    # The module's own Redis: the round's lease is not shared with other tests' workers.
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": module_redis.url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_URL_ALLOWLIST": "127.0.0.1",  # the test website
        "SOURCE_REFRESH_CHECK_SECONDS": "0.2",
        "SOURCE_REFRESH_PERIOD_SCALE": str(SCALE),
        "EMBEDDINGS_BASE_URL": embeddings.base_url,
        "EMBEDDINGS_MODEL": "fake-embed",
    }


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api"), env) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def workers(
    env: dict[str, str], api: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[IngestionWorker]]:
    """Two workers: both run the refresh round's schedule, one at a time takes its lease."""
    started = [IngestionWorker(tmp_path_factory.mktemp(f"worker{n}"), env) for n in range(2)]
    for worker in started:
        worker.start()
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


@pytest.fixture
def owner(client: httpx.Client) -> Account:
    return sign_up(client)


def add_url(client: httpx.Client, owner: Account, bot: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/chatbots/{bot}/sources/url", json=body, headers=owner.headers)


def get_source(client: httpx.Client, owner: Account, bot: str, source: str) -> dict[str, Any]:
    response = client.get(f"/api/chatbots/{bot}/sources/{source}", headers=owner.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def patch_source(
    client: httpx.Client, owner: Account, bot: str, source: str, **body: Any
) -> httpx.Response:
    return client.patch(f"/api/chatbots/{bot}/sources/{source}", json=body, headers=owner.headers)


def chunks_by_page(client: httpx.Client, owner: Account, bot: str) -> dict[str, list[str]]:
    """The bot's chunk ids by page URL (every page mentions the oven)."""
    response = client.post(
        f"/api/chatbots/{bot}/retrieve", json={"query": "oven", "top_k": 20}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    found: dict[str, list[str]] = {}
    for chunk in response.json()["results"]:
        found.setdefault(chunk["url"], []).append(chunk["chunk_id"])
    return {url: sorted(ids) for url, ids in found.items()}


def ready_then_hourly(
    client: httpx.Client, owner: Account, bot: str, **body: Any
) -> dict[str, Any]:
    """A URL source, processed, then put on the hourly schedule: its first refresh comes one
    (shortened) hour after it is ready, whatever the first processing took."""
    created = add_url(client, owner, bot, **body)
    assert created.status_code == 202, created.text
    source: dict[str, Any] = created.json()
    assert wait_ready(client, owner, bot, source["id"])["status"] == "ready"
    patched = patch_source(client, owner, bot, source["id"], refresh_schedule="hourly")
    assert patched.status_code == 200, patched.text
    scheduled: dict[str, Any] = patched.json()
    assert scheduled["refresh_schedule"] == "hourly"
    assert scheduled["next_refresh_at"] is not None
    assert scheduled["last_refreshed_at"] is None
    return scheduled


def refreshed(
    client: httpx.Client, owner: Account, bot: str, source: str, accept: Callable[[str], bool]
) -> dict[str, Any]:
    """Waits for a refresh whose outcome `accept`s, then turns the schedule off and waits until
    no refresh is under way: what the test then counts cannot change."""
    poll_until(
        lambda: get_source(client, owner, bot, source)["last_refresh_outcome"],
        lambda last: last is not None and accept(last["outcome"]),
        REFRESH_TIMEOUT,
    )
    assert patch_source(client, owner, bot, source, refresh_schedule="off").status_code == 200
    return poll_until(
        lambda: get_source(client, owner, bot, source),
        lambda state: state["status"] in {"ready", "failed"},
        REFRESH_TIMEOUT,
    )


def worker_refreshes(workers: list[IngestionWorker], outcome: str) -> float:
    """botsmith_source_refreshes_total{outcome} summed over the workers' metrics."""
    total = 0.0
    for worker in workers:
        text = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics").text
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        total += value(samples, "botsmith_source_refreshes_total", outcome=outcome)
    return total


def test_a_due_source_is_refreshed_once_across_two_workers_and_a_304_keeps_its_chunks(
    client: httpx.Client,
    owner: Account,
    site: Site,
    embeddings: FakeEmbeddings,
    workers: list[IngestionWorker],
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = ready_then_hourly(client, owner, bot, url=site.base + "/hours")
    before = chunks_by_page(client, owner, bot)
    embedded_before = len(embeddings.inputs)
    assert site.hits.count("/hours") == 1

    after = refreshed(client, owner, bot, source["id"], lambda outcome: True)
    # Read first: questions (the retrievals below) are embedded too.
    assert len(embeddings.inputs) == embedded_before, "nothing was embedded again"

    assert after["last_refresh_outcome"] == {"outcome": "unchanged", "reason": None}
    assert after["status"] == "ready"
    assert after["last_refreshed_at"] is not None
    # Refreshed exactly once, though two workers run the round, and asked conditionally.
    assert site.hits.count("/hours") == 2
    assert site.conditional_hits("/hours") == ['"/hours-v1"']
    assert chunks_by_page(client, owner, bot) == before
    assert worker_refreshes(workers, "unchanged") == 1
    assert after["next_refresh_at"] is None  # turned off by the test


def test_a_changed_page_gets_new_chunks_and_is_answerable_while_the_unchanged_keeps_its_own(
    client: httpx.Client,
    owner: Account,
    site: Site,
    embeddings: FakeEmbeddings,
    workers: list[IngestionWorker],
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = ready_then_hourly(client, owner, bot, url=site.base + "/sitemap.xml", mode="sitemap")
    assert source["progress"]["pages"] == 2
    before = chunks_by_page(client, owner, bot)
    install, clean = site.base + "/guide/install", site.base + "/guide/clean"
    assert set(before) == {install, clean}
    embedded_before = len(embeddings.inputs)

    site.pages["/guide/clean"] = _page("Cleaning", "Run the pyrolytic oven cleaning every week.")
    site.etags["/guide/clean"] = '"/guide/clean-v2"'
    try:
        after = refreshed(client, owner, bot, source["id"], lambda outcome: outcome == "updated")
    finally:
        site.pages["/guide/clean"] = PAGES["/guide/clean"]
        site.etags["/guide/clean"] = '"/guide/clean-v1"'
    # Read first: questions (the retrievals below) are embedded too.
    embedded = embeddings.inputs[embedded_before:]

    assert after["status"] == "ready"
    assert site.conditional_hits("/guide/install")[-1] == '"/guide/install-v1"'
    assert site.conditional_hits("/guide/clean")[-1] == '"/guide/clean-v1"'
    now = chunks_by_page(client, owner, bot)
    assert now[install] == before[install], "the page that answered 304 keeps its chunks"
    assert set(now[clean]).isdisjoint(before[clean]), "the changed page has new chunks"
    # Only the changed page's chunks went to the embeddings endpoint.
    assert embedded
    assert all("every week" in text for text in embedded)

    answer = client.post(
        f"/api/chatbots/{bot}/chat",
        json={"message": "How often should the pyrolytic cleaning run?"},
        headers=owner.headers,
    ).json()
    assert answer["answered"] is True
    assert "every week" in answer["answer"]
    assert worker_refreshes(workers, "updated") >= 1


@pytest.mark.usefixtures("workers")
def test_a_crawl_refresh_fetches_the_pages_it_follows_in_full_and_asks_for_the_others(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = ready_then_hourly(
        client, owner, bot, url=site.base + "/docs/", mode="crawl", max_depth=1
    )
    assert source["progress"]["pages"] == 3
    before = chunks_by_page(client, owner, bot)

    after = refreshed(client, owner, bot, source["id"], lambda outcome: True)

    assert after["last_refresh_outcome"]["outcome"] == "unchanged"
    assert site.hits.count("/docs/") == 2
    assert site.conditional_hits("/docs/") == [], "its links are needed: fetched in full"
    assert site.conditional_hits("/docs/a") == ['"/docs/a-v1"']
    assert site.conditional_hits("/docs/b") == ['"/docs/b-v1"']
    assert chunks_by_page(client, owner, bot) == before


@pytest.mark.parametrize(("path", "status"), [("/menu", 500), ("/gone", 404)])
@pytest.mark.usefixtures("workers")
def test_a_failing_refresh_keeps_the_chunks_answerable_and_records_the_reason(
    client: httpx.Client, owner: Account, site: Site, path: str, status: int
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = ready_then_hourly(client, owner, bot, url=site.base + path)
    before = chunks_by_page(client, owner, bot)

    site.statuses[path] = status
    try:
        failed_at = datetime.now().astimezone()
        after = refreshed(client, owner, bot, source["id"], lambda outcome: outcome == "failed")
    finally:
        del site.statuses[path]

    assert after["status"] == "ready"
    assert after["error"] is None
    assert after["last_refresh_outcome"]["outcome"] == "failed"
    assert f"answered {status}" in after["last_refresh_outcome"]["reason"]
    assert datetime.fromisoformat(after["last_refreshed_at"]) >= failed_at - timedelta(seconds=1)
    assert chunks_by_page(client, owner, bot) == before


@pytest.mark.usefixtures("workers")
def test_a_failed_refresh_is_scheduled_again_as_usual(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    source = ready_then_hourly(client, owner, bot, url=site.base + "/menu")
    site.statuses["/menu"] = 503
    try:
        failed = poll_until(
            lambda: get_source(client, owner, bot, source["id"]),
            lambda s: (s["last_refresh_outcome"] or {}).get("outcome") == "failed",
            REFRESH_TIMEOUT,
        )
    finally:
        del site.statuses["/menu"]
    assert _seconds_after(failed["next_refresh_at"], failed["last_refreshed_at"]) > 0
    # The next refresh, with the site back, succeeds.
    after = refreshed(client, owner, bot, source["id"], lambda outcome: outcome != "failed")
    assert after["last_refresh_outcome"]["outcome"] == "unchanged"


def test_unknown_schedules_are_422(client: httpx.Client, owner: Account, site: Site) -> None:
    bot = create_chatbot(client, owner)["id"]
    refused = add_url(client, owner, bot, url=site.base + "/hours", refresh_schedule="monthly")
    assert assert_problem(refused, 422)["errors"][0]["field"].startswith("refresh_schedule")
    source = add_url(client, owner, bot, url=site.base + "/hours").json()
    assert_problem(patch_source(client, owner, bot, source["id"], refresh_schedule="often"), 422)
    bad_default = client.put(
        f"/api/chatbots/{bot}/source-defaults",
        json={"refresh_schedule": "yearly"},
        headers=owner.headers,
    )
    assert_problem(bad_default, 422)
    text = client.post(
        f"/api/chatbots/{bot}/sources/text",
        json={"title": "Hours", "text": "Open at nine."},
        headers=owner.headers,
    ).json()
    body = assert_problem(
        patch_source(client, owner, bot, text["id"], refresh_schedule="daily"), 422
    )
    assert "URL sources" in body["detail"]


def _seconds_after(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def test_the_chatbot_default_applies_to_sources_without_a_schedule_of_their_own(
    client: httpx.Client, owner: Account, site: Site, workers: list[IngestionWorker]
) -> None:
    bot = create_chatbot(client, owner)["id"]
    settings_url = f"/api/chatbots/{bot}/source-defaults"
    assert client.get(settings_url, headers=owner.headers).json() == {"refresh_schedule": "off"}
    following = add_url(client, owner, bot, url=site.base + "/hours").json()
    assert following["refresh_schedule"] is None
    assert following["next_refresh_at"] is None  # the default is off
    own = add_url(client, owner, bot, url=site.base + "/menu", refresh_schedule="off").json()
    # Ingested first: FerretDB applies concurrent updates of one document without isolation, so
    # the worker marking a source ready could undo the schedule written meanwhile.
    for source in (following, own):
        assert wait_ready(client, owner, bot, source["id"])["status"] == "ready"

    saved = client.put(settings_url, json={"refresh_schedule": "weekly"}, headers=owner.headers)
    assert saved.status_code == 200, saved.text
    assert client.get(settings_url, headers=owner.headers).json() == {"refresh_schedule": "weekly"}
    scheduled = get_source(client, owner, bot, following["id"])
    assert scheduled["refresh_schedule"] is None
    assert _seconds_after(scheduled["next_refresh_at"], scheduled["created_at"]) > 0.85 * WEEK
    assert get_source(client, owner, bot, own["id"])["next_refresh_at"] is None, "its own wins"

    # A new source without a schedule follows the default; null goes back to it.
    later = add_url(client, owner, bot, url=site.base + "/gone").json()
    assert later["next_refresh_at"] is not None
    back = patch_source(client, owner, bot, own["id"], refresh_schedule=None)
    assert back.status_code == 200, back.text
    assert back.json()["refresh_schedule"] is None
    assert back.json()["next_refresh_at"] is not None


def test_sources_created_together_get_jittered_next_refresh_times(
    client: httpx.Client, owner: Account, site: Site
) -> None:
    bot = create_chatbot(client, owner)["id"]
    sources = [
        add_url(client, owner, bot, url=site.base + "/hours", refresh_schedule="weekly").json()
        for _ in range(6)
    ]
    delays = [_seconds_after(s["next_refresh_at"], s["created_at"]) for s in sources]
    assert all(0.9 * WEEK - 1 <= delay <= 1.1 * WEEK + 1 for delay in delays), delays
    assert len({round(delay, 1) for delay in delays}) > 1, delays
