"""With an embeddings endpoint configured, retrieval fuses BM25 with vector similarity; without
one, or when it fails, BM25 and the offline static vectors carry on."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Services
from tests.support.api import Account, create_chatbot, sign_up
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.processes import ApiServer, poll_until

GARAGE = "Vehicles may be parked in the north garage overnight."
QUESTION = "Where do I leave my automobile?"


def _prepared_bot(client: httpx.Client) -> tuple[Account, str]:
    owner = sign_up(client)
    bot = create_chatbot(client, owner)["id"]
    for title, text in (("Parking", GARAGE), ("Hours", "Reception opens at seven every morning.")):
        source = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": title, "text": text},
            headers=owner.headers,
        ).json()
        url = f"/api/chatbots/{bot}/sources/{source['id']}"

        def status(url: str = url) -> str:
            return str(client.get(url, headers=owner.headers).json()["status"])

        poll_until(status, lambda value: value == "ready", 20)
    return owner, bot


def _env(services: Services, **extra: str) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": "",
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        **extra,
    }


@pytest.fixture(scope="module")
def embeddings() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as fake:
        yield fake


def test_vectors_find_what_words_miss(
    services: Services, embeddings: FakeEmbeddings, tmp_path: Path
) -> None:
    env = _env(services, EMBEDDINGS_BASE_URL=embeddings.base_url, EMBEDDINGS_MODEL="fake-embed")
    with ApiServer(tmp_path, env) as api, api.client() as client:
        api.wait_ready()
        owner, bot = _prepared_bot(client)
        assert GARAGE in embeddings.inputs, "chunks are embedded at ingestion"
        results = client.post(
            f"/api/chatbots/{bot}/retrieve", json={"query": QUESTION}, headers=owner.headers
        ).json()["results"]
        assert results[0]["content"] == GARAGE
        assert results[0]["score"] == 0, "no word in common: only the vectors found it"
        assert results[0]["relevance"] > 0.2

        embeddings.failing = True
        try:
            fallback = client.post(
                f"/api/chatbots/{bot}/retrieve",
                json={"query": "reception opens"},
                headers=owner.headers,
            )
        finally:
            embeddings.failing = False
        assert fallback.status_code == 200
        assert fallback.json()["results"][0]["title"] == "Hours"
    assert "static vectors only" in api.output()


def test_without_an_endpoint_the_offline_vectors_rank_the_synonym_first(
    services: Services, tmp_path: Path
) -> None:
    with ApiServer(tmp_path, _env(services)) as api, api.client() as client:
        api.wait_ready()
        owner, bot = _prepared_bot(client)
        found = client.post(
            f"/api/chatbots/{bot}/retrieve", json={"query": QUESTION}, headers=owner.headers
        ).json()
        results = found["results"]
        assert [r["title"] for r in results] == ["Parking", "Hours"]
        assert results[0]["score"] == 0, "no word in common: the static model found it"
        assert results[0]["relevance"] > results[1]["relevance"]
        assert found["above_threshold"] is False, "too weak a match to answer from"
