"""Evaluation as a product feature: a bot's test cases, runs executed by the real ingestion worker
(or by the API without Redis), their scores, the comparison of two runs, and `botsmith eval`."""

import json
import math
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Services, StartApi
from tests.support.api import Account, add_text, assert_problem, create_chatbot, sign_up
from tests.support.processes import ROOT, VENV_BIN, ApiServer, IngestionWorker, poll_until

KNOWLEDGE = """# Opening hours
The shop opens at nine in the morning and closes at six in the evening, Monday to Saturday.

# Returns
Unworn shoes can be returned within thirty days of purchase with the receipt.

# Delivery
Parcels are delivered by bicycle courier within the city in two working days.
"""
OPENING = {"question": "When does the shop open?", "evidence": ["opens  at NINE"]}
RETURNS = {"question": "How many days do I have to return shoes?", "evidence": ["thirty days"]}
GIFT_CARDS = {"question": "Do you sell gift cards?", "evidence": ["gift cards are sold"]}
NONSENSE = {"question": "Zorblax quuxification of the frobnicator?", "unanswerable": True}
RUN_DEADLINE = 120.0


@dataclass
class Bot:
    owner: Account
    id: str
    source_id: str
    retrieval: dict[str, Any]  # the bot's settings when created

    def path(self, rest: str) -> str:
        return f"/api/chatbots/{self.id}/eval/{rest}"


@dataclass
class World:
    api: ApiServer
    client: httpx.Client

    def bot(self, owner: Account | None = None) -> Bot:
        """A new bot with the knowledge above, processed by the worker."""
        owner = owner or sign_up(self.client)
        bot = create_chatbot(self.client, owner)
        source = add_text(self.client, owner, bot["id"], "Shop", KNOWLEDGE)
        assert source["status"] == "ready", source
        return Bot(owner, bot["id"], source["id"], bot["retrieval"])


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One API and one ingestion worker on a stream and a database of this module's own."""
    workdir = tmp_path_factory.mktemp("evaluation")
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
    }
    with ApiServer(workdir, env) as api, IngestionWorker(workdir, api.env):
        api.wait_ready()
        with api.client() as client:
            yield World(api, client)


def _created(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _finished_run(client: httpx.Client, bot: Bot, run_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        body: dict[str, Any] = client.get(
            bot.path(f"runs/{run_id}"), headers=bot.owner.headers
        ).json()
        return body

    return poll_until(read, lambda run: run["status"] in {"done", "failed"}, RUN_DEADLINE)


def _recomputed_summary(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """The summary from the per-case results, by the metrics' definitions (README)."""

    def share(outcomes: list[bool] | list[float]) -> float | None:
        return sum(outcomes) / len(outcomes) if outcomes else None

    answerable = [r for r in results if not r["expected"]["unanswerable"]]
    unanswerable = [r for r in results if r["expected"]["unanswerable"]]
    working = [r for r in answerable if r["error"] is None]
    latencies = sorted(r["latency_ms"] for r in results if r["latency_ms"] is not None)
    return {
        "cases": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "errors": sum(r["error"] is not None for r in results),
        "k": k,
        "recall_at_k": share([r["hit"] for r in answerable]),
        "mrr": share([1 / r["rank"] if r["rank"] else 0.0 for r in answerable]),
        "answered_rate": share([r["answered"] for r in working]),
        "idk_rate": share([not r["answered"] for r in unanswerable if r["error"] is None]),
        "citation_accuracy": share([r["citation_correct"] for r in working if r["answered"]]),
        "evidence_in_answer_rate": share(
            [r["evidence_in_answer"] for r in working if r["expected"]["evidence"]]
        ),
        "p95_latency_ms": latencies[math.ceil(0.95 * len(latencies)) - 1] if latencies else None,
    }


def test_a_run_of_stored_cases_is_executed_by_the_worker_and_scored_from_its_results(
    world: World,
) -> None:
    client, bot = world.client, world.bot()
    headers = bot.owner.headers
    with_source = {**RETURNS, "expected_source_id": bot.source_id}
    stored = _created(
        client.post(
            bot.path("cases/batch"), json=[OPENING, with_source, GIFT_CARDS], headers=headers
        )
    )
    assert [case["question"] for case in stored] == [
        OPENING["question"],
        RETURNS["question"],
        GIFT_CARDS["question"],
    ]
    nonsense = _created(client.post(bot.path("cases"), json=NONSENSE, headers=headers))
    assert nonsense["unanswerable"] is True
    assert nonsense["evidence"] == []
    listed = client.get(bot.path("cases"), params={"limit": 3}, headers=headers).json()
    assert len(listed["items"]) == 3
    rest = client.get(
        bot.path("cases"), params={"limit": 3, "cursor": listed["next_cursor"]}, headers=headers
    ).json()
    assert rest["next_cursor"] is None
    assert {c["id"] for c in listed["items"] + rest["items"]} == {
        c["id"] for c in [*stored, nonsense]
    }

    queued = _created(client.post(bot.path("runs"), json={"label": "first"}, headers=headers), 202)
    assert queued["status"] == "queued"
    assert queued["cases_from"] == "stored"
    assert queued["progress"] == {"done": 0, "total": 4}
    assert queued["settings"]["top_k"] == bot.retrieval["top_k"]
    assert queued["settings"]["score_threshold"] == bot.retrieval["score_threshold"]

    run = _finished_run(client, bot, queued["id"])
    assert run["status"] == "done", run
    assert run["progress"] == {"done": 4, "total": 4}
    assert run["started_at"] is not None
    assert run["finished_at"] is not None
    results = run["results"]
    by_question = {result["question"]: result for result in results}
    assert [r["position"] for r in results] == [0, 1, 2, 3]

    opening = by_question[OPENING["question"]]
    assert opening["expected"] == {
        "evidence": OPENING["evidence"],
        "expected_source_id": None,
        "unanswerable": False,
    }
    assert opening["hit"] is True
    assert opening["rank"] is not None
    first_hit = opening["retrieved"][opening["rank"] - 1]
    assert first_hit["holds_evidence"] is True  # case and spacing do not matter
    assert first_hit["source_id"] == bot.source_id
    assert all(
        not passage["holds_evidence"] for passage in opening["retrieved"][: opening["rank"] - 1]
    )
    assert opening["answered"] is True
    assert "opens at nine" in opening["answer"]
    assert first_hit["chunk_id"] in opening["cited_chunk_ids"]
    assert opening["citation_correct"] is True
    assert opening["evidence_in_answer"] is True
    assert opening["confidence"] == max(p["relevance"] for p in opening["retrieved"])
    assert opening["error"] is None

    returns = by_question[RETURNS["question"]]
    assert returns["hit"] is True
    assert returns["rank"] == 1  # every passage comes from the expected source
    assert returns["expected"]["expected_source_id"] == bot.source_id

    gift_cards = by_question[GIFT_CARDS["question"]]
    assert gift_cards["hit"] is False
    assert gift_cards["rank"] is None
    assert all(not passage["holds_evidence"] for passage in gift_cards["retrieved"])

    unanswerable = by_question[NONSENSE["question"]]
    assert unanswerable["hit"] is None
    assert unanswerable["rank"] is None
    assert unanswerable["citation_correct"] is None
    assert unanswerable["evidence_in_answer"] is None
    assert unanswerable["answered"] is False
    assert unanswerable["answer"] == "I don't know the answer to that from the knowledge I have."

    summary = run["summary"]
    assert summary == pytest.approx(_recomputed_summary(results, bot.retrieval["top_k"]))
    assert summary["recall_at_k"] == pytest.approx(2 / 3)
    assert summary["idk_rate"] == 1.0

    listing = client.get(bot.path("runs"), headers=headers).json()
    assert [r["id"] for r in listing["items"]] == [queued["id"]]
    assert listing["items"][0]["summary"] == summary
    assert "results" not in listing["items"][0]
    light = client.get(
        bot.path(f"runs/{queued['id']}"), params={"results": "false"}, headers=headers
    )
    assert light.json()["results"] is None

    deleted = client.delete(bot.path(f"cases/{stored[2]['id']}"), headers=headers)
    assert deleted.status_code == 204
    assert_problem(client.delete(bot.path(f"cases/{stored[2]['id']}"), headers=headers), 404)


def test_a_finished_run_delivered_again_is_skipped(world: World) -> None:
    client, bot = world.client, world.bot()
    queued = _created(
        client.post(bot.path("runs"), json={"cases": [OPENING]}, headers=bot.owner.headers), 202
    )
    assert queued["cases_from"] == "inline"
    done = _finished_run(client, bot, queued["id"])
    assert done["status"] == "done"

    # At least once: the same job again, as a redelivery would bring it.
    stream = world.api.env["INGEST_STREAM"]
    with redis.Redis.from_url(world.api.env["REDIS_URL"]) as queue:
        queue.xadd(stream, {"eval_run_id": queued["id"]})

        def unfinished_jobs() -> int:
            (group,) = [g for g in queue.xinfo_groups(stream) if g["name"] == b"ingest"]
            return int(group["lag"] or 0) + int(group["pending"])

        poll_until(unfinished_jobs, lambda jobs: jobs == 0, RUN_DEADLINE)
    again = client.get(bot.path(f"runs/{queued['id']}"), headers=bot.owner.headers).json()
    assert again["finished_at"] == done["finished_at"]
    assert again["results"] == done["results"]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({**OPENING, "unanswerable": True}, "body"),
        ({**NONSENSE, "expected_source_id": "abc"}, "body"),
        ({"question": "   ", "evidence": ["nine"]}, "question"),
        ({"question": "When?"}, "body"),
        ({"question": "When?", "evidence": []}, "evidence"),
        ({"question": "When?", "evidence": ["x" * 501]}, "evidence.0"),
        ({"question": "x" * 2001, "unanswerable": True}, "question"),
        ({**OPENING, "colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_case_is_a_422_naming_the_field(
    world: World, case: dict[str, Any], field: str
) -> None:
    owner = sign_up(world.client)
    bot = create_chatbot(world.client, owner)["id"]
    response = world.client.post(
        f"/api/chatbots/{bot}/eval/cases", json=case, headers=owner.headers
    )
    problem = assert_problem(response, 422)
    assert field in {error["field"] for error in problem["errors"]}


def test_cases_are_stored_all_or_none_up_to_the_limit(world: World) -> None:
    client = world.client
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    bot = Bot(owner, chatbot["id"], "", chatbot["retrieval"])
    headers = owner.headers

    one_bad = [OPENING, {**NONSENSE, "evidence": ["nine"]}]
    problem = assert_problem(
        client.post(bot.path("cases/batch"), json=one_bad, headers=headers), 422
    )
    assert "1" in {error["field"] for error in problem["errors"]}
    too_many = [OPENING] * 1001
    assert_problem(client.post(bot.path("cases/batch"), json=too_many, headers=headers), 422)
    inline = {"cases": too_many}
    assert_problem(client.post(bot.path("runs"), json=inline, headers=headers), 422)
    assert client.get(bot.path("cases"), headers=headers).json()["items"] == []
    no_cases = assert_problem(client.post(bot.path("runs"), headers=headers), 422)
    assert "no test cases" in no_cases["detail"]

    _created(client.post(bot.path("cases/batch"), json=[OPENING] * 999, headers=headers))
    over = assert_problem(
        client.post(bot.path("cases/batch"), json=[OPENING, RETURNS], headers=headers), 409
    )
    assert "1000" in over["detail"]
    _created(client.post(bot.path("cases"), json=RETURNS, headers=headers))
    assert_problem(client.post(bot.path("cases"), json=GIFT_CARDS, headers=headers), 409)


def test_another_owners_bot_is_404(world: World) -> None:
    client, bot = world.client, world.bot()
    run = _created(
        client.post(bot.path("runs"), json={"cases": [OPENING]}, headers=bot.owner.headers), 202
    )
    stranger = sign_up(client).headers
    assert_problem(client.get(bot.path("cases"), headers=stranger), 404)
    assert_problem(client.post(bot.path("cases"), json=OPENING, headers=stranger), 404)
    assert_problem(client.post(bot.path("runs"), json={}, headers=stranger), 404)
    assert_problem(client.get(bot.path(f"runs/{run['id']}"), headers=stranger), 404)
    assert_problem(client.get(bot.path("runs"), headers=stranger), 404)
    compare = bot.path(f"runs/compare?base={run['id']}&head={run['id']}")
    assert_problem(client.get(compare, headers=stranger), 404)
    _finished_run(client, bot, run["id"])


def test_an_unanswered_chat_answer_becomes_a_case_in_one_call(world: World) -> None:
    client, bot = world.client, world.bot()
    headers = bot.owner.headers
    chat = client.post(
        f"/api/chatbots/{bot.id}/chat", json={"message": NONSENSE["question"]}, headers=headers
    ).json()
    assert chat["answered"] is False
    analytics = client.get(f"/api/chatbots/{bot.id}/analytics", headers=headers).json()
    unanswered = analytics["unanswered_questions"]
    assert [q["question"] for q in unanswered] == ["zorblax quuxification of the frobnicator"]

    from_message = bot.path(f"cases/from-message/{chat['message_id']}")
    undecided = assert_problem(client.post(from_message, json={}, headers=headers), 422)
    assert "unanswerable" in undecided["errors"][0]["message"]
    case = _created(client.post(from_message, json={"unanswerable": True}, headers=headers))
    assert case["question"] == NONSENSE["question"]
    assert case["unanswerable"] is True
    with_evidence = _created(
        client.post(from_message, json={"evidence": ["frobnicator"]}, headers=headers)
    )
    assert with_evidence["evidence"] == ["frobnicator"]
    listed = client.get(bot.path("cases"), headers=headers).json()["items"]
    assert {c["id"] for c in listed} == {case["id"], with_evidence["id"]}

    missing = bot.path("cases/from-message/no-such-message")
    assert_problem(client.post(missing, json={"unanswerable": True}, headers=headers), 404)


def test_compare_gives_each_metrics_delta_and_the_cases_that_changed(world: World) -> None:
    client, bot = world.client, world.bot()
    headers = bot.owner.headers
    cases = {"cases": [OPENING, RETURNS, NONSENSE]}
    base = _finished_run(
        client, bot, _created(client.post(bot.path("runs"), json=cases, headers=headers), 202)["id"]
    )
    missing = client.get(
        bot.path("runs/compare"),
        params={"base": base["id"], "head": "no-such-run"},
        headers=headers,
    )
    assert_problem(missing, 404)
    deleted = client.delete(f"/api/chatbots/{bot.id}/sources/{bot.source_id}", headers=headers)
    assert deleted.status_code == 204
    head = _finished_run(
        client, bot, _created(client.post(bot.path("runs"), json=cases, headers=headers), 202)["id"]
    )
    assert head["settings"]["knowledge_version"] > base["settings"]["knowledge_version"]

    response = client.get(
        bot.path("runs/compare"), params={"base": base["id"], "head": head["id"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    comparison = response.json()
    metrics = {m["metric"]: m for m in comparison["metrics"]}
    assert set(metrics) == set(base["summary"])
    for name, metric in metrics.items():
        assert metric["base"] == pytest.approx(base["summary"][name])
        assert metric["head"] == pytest.approx(head["summary"][name])
    assert metrics["recall_at_k"] == pytest.approx(
        {"metric": "recall_at_k", "base": 1.0, "head": 0.0, "delta": -1.0}
    )
    assert metrics["answered_rate"]["delta"] == pytest.approx(-1.0)
    assert metrics["idk_rate"]["delta"] == 0.0
    assert metrics["citation_accuracy"]["head"] is None
    assert metrics["citation_accuracy"]["delta"] is None
    assert {c["question"]: c for c in comparison["changed"]} == {
        question: {
            "question": question,
            "base_hit": True,
            "head_hit": False,
            "base_answered": True,
            "head_answered": False,
        }
        for question in (OPENING["question"], RETURNS["question"])
    }
    assert comparison["only_in_base"] == comparison["only_in_head"] == []


def _botsmith_eval(
    api: ApiServer, bot: Bot, cases_file: Path, *options: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`botsmith eval` as CI runs it, with the owner's token in BOTSMITH_TOKEN."""
    env = {**os.environ, "BOTSMITH_TOKEN": bot.owner.access_token if token is None else token}
    argv = [str(VENV_BIN / "botsmith"), "eval", str(cases_file), "--url", api.base_url]
    return subprocess.run(
        [*argv, "--chatbot", bot.id, *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=RUN_DEADLINE + 30,
    )


def test_the_cli_prints_the_summary_and_exits_1_under_a_minimum(
    world: World, tmp_path: Path
) -> None:
    bot = world.bot()
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps({"cases": [OPENING, GIFT_CARDS, NONSENSE]}))
    timeout = ("--timeout", str(RUN_DEADLINE))

    passing = _botsmith_eval(world.api, bot, cases_file, *timeout, "--min-recall", "0.5")
    assert passing.returncode == 0, passing.stderr
    table = passing.stdout.splitlines()
    assert table[0].startswith("run ")
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert rows["recall_at_k"][:2] == [f"(k={bot.retrieval['top_k']})", "0.500"]
    assert rows["recall_at_k"][2:] == [">=", "0.500", "ok"]
    assert rows["cases"] == ["3"]
    assert rows["idk_rate"] == ["1.000"]
    # Values are right-aligned in one column: the rows without a minimum end together.
    assert len({len(line) for line in table[1:] if ">=" not in line}) == 1

    cases_file.write_text(json.dumps([OPENING, GIFT_CARDS]))  # a bare list works too
    failing = _botsmith_eval(
        world.api, bot, cases_file, *timeout, "--min-recall", "1", "--min-idk", "0.5", "--json"
    )
    assert failing.returncode == 1, failing.stderr
    report = json.loads(failing.stdout)
    assert report["summary"]["recall_at_k"] == 0.5
    assert "recall_at_k 0.500 is under the minimum 1" in failing.stderr
    assert "idk_rate: no case measures it" in failing.stderr
    runs = world.client.get(bot.path("runs"), headers=bot.owner.headers).json()["items"]
    assert runs[0]["id"] == report["run_id"]
    assert runs[0]["summary"] == pytest.approx(report["summary"])

    cases_file.write_text(json.dumps([{"question": "When?"}]))
    refused = _botsmith_eval(world.api, bot, cases_file)
    assert refused.returncode == 2
    assert "422" in refused.stderr
    assert "give evidence, an expected_source_id, or unanswerable: true" in refused.stderr

    no_token = _botsmith_eval(world.api, bot, cases_file, token="")
    assert no_token.returncode == 2
    assert "--token" in no_token.stderr


def test_without_redis_the_api_executes_runs_itself(start_api: StartApi) -> None:
    api = start_api({"REDIS_URL": ""})
    api.wait_ready()
    with api.client() as client:
        world = World(api, client)
        bot = world.bot()
        queued = _created(
            client.post(
                bot.path("runs"), json={"cases": [OPENING, NONSENSE]}, headers=bot.owner.headers
            ),
            202,
        )
        run = _finished_run(client, bot, queued["id"])
    assert run["status"] == "done", run
    assert run["summary"]["recall_at_k"] == 1.0
    assert run["summary"]["idk_rate"] == 1.0
