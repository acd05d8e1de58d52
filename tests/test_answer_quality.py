"""What visitors get from a bot's knowledge: an answer that says what the passage says, cited;
"I don't know" when the knowledge only shares words with the question; and index segments that
the ingestion stores, so that a process answers without building an index from the chunks."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from app.chat.answering import I_DONT_KNOW
from app.sources.chunking import chunk_text
from app.sources.extract import extract_text
from pymongo import MongoClient

from tests.conftest import Services
from tests.support.api import Account, add_text, create_chatbot, sign_up
from tests.support.processes import ApiServer, IngestionWorker, poll_until

KETTLE = (
    "The K2 kettle boils 1.7 litres of water in about three minutes. Its warranty lasts 24 "
    "months from the date of purchase. Descale it every month with white vinegar."
)


def _env(services: Services, db_name: str, redis: bool = False) -> dict[str, str]:
    return {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url if redis else "",
        "DB_NAME": db_name,
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }


def _ask(client: httpx.Client, owner: Account, bot: str, question: str) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{bot}/chat", json={"message": question}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def db_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def kettle_api(
    services: Services, db_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API that ingests in its own process (no Redis), over a database of this module."""
    with ApiServer(tmp_path_factory.mktemp("api"), _env(services, db_name)) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def kettle_bot(kettle_api: ApiServer) -> tuple[Account, str, str]:
    with kettle_api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        source = add_text(client, owner, bot, "Kettle manual", KETTLE)
        assert source["status"] == "ready"
        return owner, bot, source["id"]


def test_how_long_is_the_warranty_is_answered_with_its_citation(
    kettle_api: ApiServer, kettle_bot: tuple[Account, str, str]
) -> None:
    owner, bot, source_id = kettle_bot
    with kettle_api.client() as client:
        for question in ("How long is the warranty?", "What is the warranty?"):
            reply = _ask(client, owner, bot, question)
            assert reply["answered"] is True, reply
            assert "Its warranty lasts 24 months from the date of purchase. [1]" in reply["answer"]
            assert "white vinegar" not in reply["answer"], "only the sentences that answer"
            assert [(s["index"], s["source_id"]) for s in reply["sources"]] == [(1, source_id)]


def test_a_question_that_only_shares_words_with_the_knowledge_gets_i_dont_know(
    kettle_api: ApiServer, kettle_bot: tuple[Account, str, str]
) -> None:
    owner, bot, _ = kettle_bot
    with kettle_api.client() as client:
        for question in (
            "Is the warranty transferable to a new owner?",
            "Can the kettle make espresso?",
        ):
            reply = _ask(client, owner, bot, question)
            assert reply["answered"] is False, reply
            assert reply["answer"] == I_DONT_KNOW
            assert reply["sources"] == []


def test_a_definition_list_entry_stays_whole_in_one_chunk() -> None:
    entry = (
        "<dt>CONCURRENTLY</dt><dd><p>Build the index without taking any locks that prevent "
        "concurrent inserts, updates, or deletes on the table.</p><p>A standard index build "
        "locks out writes, but not reads, until it is done.</p></dd>"
    )
    filler = "<p>" + "Indexes speed up reads. " * 12 + "</p>"
    page = (
        "<html><head><title>CREATE INDEX</title></head><body>"
        '<div class="navheader"><a href="prev.html">Prev</a> Next</div>'
        f"<h2>Parameters</h2>{filler}<dl><dt>UNIQUE</dt><dd>Check for duplicates.</dd>"
        f"{entry}</dl></body></html>"
    )
    text = extract_text("create-index.html", page.encode())
    assert "Prev" not in text, "page navigation is dropped"
    chunks = chunk_text(text, size=400, overlap=0)
    whole = (
        "CONCURRENTLY: Build the index without taking any locks that prevent concurrent "
        "inserts, updates, or deletes on the table. A standard index build locks out writes, "
        "but not reads, until it is done."
    )
    holding = [chunk for chunk in chunks if "CONCURRENTLY" in chunk.content]
    assert len(holding) == 1, [c.content for c in chunks]
    assert whole in holding[0].content
    assert holding[0].heading == "Parameters"
    assert len(chunks) >= 2, "the section was long enough to need more than one chunk"


def test_a_fresh_process_answers_from_the_stored_segments_and_a_worker_backfills_them(
    services: Services, tmp_path: Path
) -> None:
    db_name = f"test_{uuid.uuid4().hex[:12]}"
    env = _env(services, db_name, redis=True)
    database = MongoClient[dict[str, Any]](services.mongo_url)[db_name]
    for name in ("first", "second", "third"):
        (tmp_path / name).mkdir()
    try:
        with IngestionWorker(tmp_path / "first", env), ApiServer(tmp_path, env) as api:
            api.wait_ready()
            with api.client() as client:
                owner = sign_up(client)
                bot = create_chatbot(client, owner)["id"]
                source = add_text(client, owner, bot, "Kettle manual", KETTLE)
                assert source["status"] == "ready"
        assert database["index_segments"].count_documents({"source_id": source["id"]}) == 1
        assert database["index_segment_data"].count_documents({"source_id": source["id"]}) == 1

        # Without the chunks, and without Redis's copy of the segment, a new process still
        # answers: it reads the segment from MongoDB, and puts the copy back.
        chunks = list(database["chunks"].find({"source_id": source["id"]}))
        database["chunks"].delete_many({"source_id": source["id"]})
        (listed,) = database["index_segments"].find({"source_id": source["id"]})
        cached = f"botsmith:segment:{listed['build']}"
        with redis.Redis.from_url(services.redis_url) as cache:
            assert cache.delete(cached) == 1, "ingestion leaves a copy in Redis"
            with ApiServer(tmp_path / "second", env) as api, api.client() as client:
                api.wait_ready()
                assert _ask(client, owner, bot, "How long is the warranty?")["answered"] is True
            assert cache.exists(cached)

        # Chunks stored before segments existed: the worker indexes them when it starts.
        database["chunks"].insert_many(chunks)
        database["index_segments"].delete_many({})
        database["index_segment_data"].delete_many({})
        with IngestionWorker(tmp_path / "third", env) as worker:
            poll_until(
                lambda: database["index_segments"].count_documents({"source_id": source["id"]}),
                lambda count: count == 1,
                30,
            )
            assert "built the index segments of 1 sources" in worker.output()
    finally:
        database.client.drop_database(db_name)
        database.client.close()


def test_a_hit_carries_its_neighbouring_chunks_as_context(kettle_api: ApiServer) -> None:
    paragraphs = [
        "Unpack the kettle and rinse it twice before the first use. " * 3,
        "Fill the kettle to the maximum mark and switch it on at the base. " * 3,
        "Empty the kettle after use so that limescale does not build up inside. " * 2,
    ]
    with kettle_api.client() as client:
        owner = sign_up(client)
        retrieval = {"chunk_size": 200, "chunk_overlap": 0}
        bot = create_chatbot(client, owner, retrieval=retrieval)["id"]
        add_text(client, owner, bot, "Kettle use", "\n\n".join(paragraphs))
        hits = client.post(
            f"/api/chatbots/{bot}/retrieve",
            json={"query": "maximum mark switch base", "top_k": 1},
            headers=owner.headers,
        ).json()["results"]
    assert hits[0]["content"] == paragraphs[1].strip()
    assert hits[0]["before"] == paragraphs[0].strip()
    assert hits[0]["after"] == paragraphs[2].strip()
