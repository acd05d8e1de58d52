"""Bots whose provider is "openai" answer through an OpenAI-compatible server (a local fake
speaking the real streaming format); failures are clear and keep the visitor's question."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Services
from tests.support.api import Account, assert_problem, create_chatbot, read_sse, sign_up
from tests.support.fake_llm import FakeLLM
from tests.support.processes import ApiServer, poll_until


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def api(
    services: Services, llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": "",  # in-process ingestion keeps this module self-contained
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "LLM_BASE_URL": llm.base_url,
        "LLM_API_KEY": "sk-test-key",
        "LLM_ALLOWED_MODELS": "test-model",
        "LLM_TIMEOUT_SECONDS": "1",
    }
    with ApiServer(tmp_path_factory.mktemp("api"), env) as server:
        server.wait_ready()
        yield server


@pytest.fixture
def bot(client: httpx.Client) -> tuple[Account, str]:
    owner = sign_up(client)
    chatbot = create_chatbot(
        client,
        owner,
        system_prompt="You are Parcel Pal.",
        model={"provider": "openai", "model": "test-model"},
    )
    source = client.post(
        f"/api/chatbots/{chatbot['id']}/sources/text",
        json={"title": "Shipping", "text": "Parcels ship within two days of the order."},
        headers=owner.headers,
    ).json()
    poll_until(
        lambda: client.get(
            f"/api/chatbots/{chatbot['id']}/sources/{source['id']}", headers=owner.headers
        ).json()["status"],
        lambda status: status == "ready",
        20,
    )
    return owner, chatbot["id"]


def _events(
    client: httpx.Client, owner: Account, bot_id: str, body: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    with client.stream(
        "POST", f"/api/chatbots/{bot_id}/chat", json={**body, "stream": True}, headers=owner.headers
    ) as response:
        return read_sse(response)


def test_the_answer_streams_from_the_provider_with_prompt_passages_and_turns(
    client: httpx.Client, llm: FakeLLM, bot: tuple[Account, str]
) -> None:
    owner, bot_id = bot
    first = _events(client, owner, bot_id, {"message": "How fast do parcels ship?"})
    tokens = [data["text"] for name, data in first if name == "token"]
    assert "".join(tokens) == llm.reply
    assert len(tokens) == len(llm.reply.split(" "))
    assert [name for name, _ in first][-2:] == ["sources", "end"]
    assert first[-2][1]["sources"][0]["title"] == "Shipping"

    conversation = first[0][1]["conversation_id"]
    _events(
        client,
        owner,
        bot_id,
        {"message": "So when do parcels ship?", "conversation_id": conversation},
    )
    sent = llm.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-key"
    body = sent["body"]
    assert body["model"] == "test-model"
    assert body["stream"] is True
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "You are Parcel Pal." in system["content"]
    assert "[1] Shipping" in system["content"]
    assert [m["role"] for m in body["messages"][1:]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == "How fast do parcels ship?"
    assert body["messages"][-1]["content"] == "So when do parcels ship?"


def test_a_provider_failure_is_a_502_and_the_question_is_kept(
    client: httpx.Client, llm: FakeLLM, bot: tuple[Account, str]
) -> None:
    owner, bot_id = bot
    with llm.behaving("error"):
        failed = client.post(
            f"/api/chatbots/{bot_id}/chat",
            json={"message": "How fast do parcels ship?"},
            headers=owner.headers,
        )
        body = assert_problem(failed, 502)
        assert "500" in body["detail"]
        streamed = _events(client, owner, bot_id, {"message": "How fast do parcels ship?"})
        assert [name for name, _ in streamed] == ["start", "error"]
        assert streamed[-1][1]["timeout"] is False
        # The provider's own words (which may name accounts, keys or internals) stay in the log.
        assert "overloaded" not in failed.text
        assert "overloaded" not in str(streamed)
    conversations = client.get(
        f"/api/chatbots/{bot_id}/conversations", headers=owner.headers
    ).json()["items"]
    detail = client.get(
        f"/api/chatbots/{bot_id}/conversations/{conversations[-1]['id']}", headers=owner.headers
    ).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "How fast do parcels ship?")
    ]


def test_a_provider_timeout_is_a_504(
    client: httpx.Client, llm: FakeLLM, bot: tuple[Account, str]
) -> None:
    owner, bot_id = bot
    with llm.behaving("slow"):
        response = client.post(
            f"/api/chatbots/{bot_id}/chat",
            json={"message": "How fast do parcels ship?"},
            headers=owner.headers,
        )
    assert "did not finish within 1 s" in assert_problem(response, 504)["detail"]


def test_an_offline_bot_never_calls_the_provider(
    client: httpx.Client, llm: FakeLLM, tmp_path: Path
) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    before = len(llm.requests)
    client.post(
        f"/api/chatbots/{chatbot['id']}/chat", json={"message": "hello"}, headers=owner.headers
    )
    assert len(llm.requests) == before
