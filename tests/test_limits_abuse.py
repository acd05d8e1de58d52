"""Limits that a caller must not be able to step around: made-up API keys do not mint buckets of
their own, and every chat message on a WebSocket counts like a REST chat."""

import json
import secrets
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import StartApi
from tests.support.api import add_text, create_chatbot, sign_up
from tests.support.fake_llm import FakeLLM
from tests.test_realtime import receive, receive_until, ws_url

SHOP = "https://shop.example.com"


def _made_up_key() -> dict[str, str]:
    return {"X-API-Key": f"bsk_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"}


def test_a_new_made_up_api_key_per_request_does_not_escape_the_login_limit(
    start_api: StartApi,
) -> None:
    api = start_api({"RATE_LIMIT_LOGIN_PER_MINUTE": "3"}, private_redis=True)
    login = {"email": "someone@example.com", "password": "not-the-password"}
    statuses = [
        httpx.post(f"{api.base_url}/api/auth/login", json=login, headers=_made_up_key()).status_code
        for _ in range(10)
    ]
    assert 429 in statuses, statuses  # counted by address, whatever key is sent
    assert statuses.count(401) <= 4


def test_made_up_api_keys_count_against_the_address_on_other_routes(
    start_api: StartApi,
) -> None:
    api = start_api({"RATE_LIMIT_PER_MINUTE": "5"}, private_redis=True)
    statuses = [
        httpx.get(f"{api.base_url}/api/users/me", headers=_made_up_key()).status_code
        for _ in range(15)
    ]
    assert 429 in statuses, statuses
    assert statuses.count(401) <= 6


def _chat(number: int, bot: str) -> str:
    return json.dumps(
        {
            "type": "chat",
            "id": f"m{number}",
            "chatbot_id": bot,
            "message": "Are returns free?",
            "session_id": "visitor-1",
        }
    )


def _outcome(visitor: ClientConnection) -> tuple[str, str]:
    """(message id, "answered" or the error's text) of the next finished chat."""
    message: dict[str, Any] = receive_until(
        visitor, lambda m: m["type"] == "chat" and m["event"] in ("end", "error")
    )
    return message["id"], "answered" if message["event"] == "end" else message["data"]["message"]


def test_a_visitor_socket_is_held_to_the_public_chat_limit(start_api: StartApi) -> None:
    api = start_api({"RATE_LIMIT_PUBLIC_PER_MINUTE": "3", "REDIS_URL": ""})  # in-process limits
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner, visibility="public", allowed_origins=[SHOP])["id"]
    with connect(ws_url(api, chatbot_id=bot, session_id="visitor-1"), origin=Origin(SHOP)) as ws:
        receive(ws)  # welcome
        outcomes = []
        for number in range(6):  # one after the other: only the rate limit can refuse
            ws.send(_chat(number, bot))
            outcomes.append(_outcome(ws)[1])
    answered = outcomes.count("answered")
    # 3 a minute; a burst that straddles a minute boundary may get one more through.
    assert 3 <= answered <= 4, outcomes
    assert all(o == "answered" or o.startswith("rate limited; retry in") for o in outcomes)


def test_a_socket_may_have_only_two_chats_in_flight(start_api: StartApi) -> None:
    with FakeLLM("Returns are free [1].") as llm:
        api = start_api({"REDIS_URL": "", "LLM_BASE_URL": llm.base_url})
        api.wait_ready()
        with api.client() as client:
            owner = sign_up(client)
            bot = create_chatbot(
                client,
                owner,
                visibility="public",
                allowed_origins=[SHOP],
                model={"provider": "openai"},
            )["id"]
            add_text(client, owner, bot, "Returns", "Returns are free within thirty days.")
        with (
            llm.behaving("slow"),
            connect(ws_url(api, chatbot_id=bot, session_id="visitor-1"), origin=Origin(SHOP)) as ws,
        ):
            receive(ws)  # welcome
            for number in range(3):  # the model takes seconds: the first two are still running
                ws.send(_chat(number, bot))
            outcomes = dict(_outcome(ws) for _ in range(3))
    assert outcomes["m2"] == "too many chats at once on this connection; wait for one"
    assert outcomes["m0"] == outcomes["m1"] == "answered"
