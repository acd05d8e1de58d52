"""The widget's script, its settings on the chatbot and the visitor endpoints it uses, through the
running API (the browser tests are in test_widget_browser.py)."""

import base64
import gzip
import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.conftest import StartApi
from tests.support.api import Account, assert_problem, create_chatbot, sign_up
from tests.support.processes import ROOT, ApiServer

ORIGIN = "https://shop.example"


def test_the_script_is_small_cached_and_pinned_by_the_hash_the_readme_gives(
    api: ApiServer,
) -> None:
    latest = httpx.get(f"{api.base_url}/widget.js")
    assert latest.status_code == 200
    assert latest.headers["content-type"].startswith("text/javascript")
    assert latest.headers["cache-control"] == "public, max-age=300"
    assert len(gzip.compress(latest.content, 9)) < 25 * 1024

    version = latest.headers["x-widget-version"]
    pinned = httpx.get(f"{api.base_url}/widget/{version}/widget.js")
    assert pinned.content == latest.content
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert_problem(httpx.get(f"{api.base_url}/widget/000000000000/widget.js"), 404)

    integrity = "sha384-" + base64.b64encode(hashlib.sha384(latest.content).digest()).decode()
    readme = (ROOT / "README.md").read_text()
    assert f"/widget/{version}/widget.js" in readme
    assert set(re.findall(r"sha384-[A-Za-z0-9+/=]+", readme)) == {integrity}


def test_appearance_is_validated_and_reaches_the_public_configuration(
    client: httpx.Client,
) -> None:
    owner = sign_up(client)
    for bad in (
        {"accent_color": "red"},
        {"accent_color": "#12345"},
        {"position": "top-left"},
        {"theme": "sepia"},
        {"avatar_url": "http://example.com/a.png"},
        {"title": "x" * 61},
        {"suggested_questions": ["a", "b", "c", "d", "e"]},
        {"suggested_questions": [""]},
        {"unknown": 1},
    ):
        response = client.post(
            "/api/chatbots", json={"name": "Bad", "appearance": bad}, headers=owner.headers
        )
        assert_problem(response, 422)

    bot = create_chatbot(client, owner, visibility="public", appearance={"accent_color": "#0f766e"})
    assert bot["appearance"] == {
        "accent_color": "#0f766e",
        "position": "bottom-right",
        "title": "",
        "avatar_url": None,
        "theme": "auto",
        "suggested_questions": [],
    }
    changed = client.patch(
        f"/api/chatbots/{bot['id']}",
        json={
            "appearance": {
                "position": "bottom-left",
                "theme": "dark",
                "avatar_url": "https://cdn.example/bot.png",
            }
        },
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    public = client.get(f"/api/public/chatbots/{bot['id']}").json()
    assert public["appearance"] == {
        "accent_color": "#0f766e",  # kept: only the fields sent change
        "position": "bottom-left",
        "title": "",
        "avatar_url": "https://cdn.example/bot.png",
        "theme": "dark",
        "suggested_questions": [],
    }


def _public_bot(client: httpx.Client, owner: Account) -> dict[str, Any]:
    bot = create_chatbot(client, owner, visibility="public", allowed_origins=[ORIGIN])
    added = client.post(
        f"/api/chatbots/{bot['id']}/sources/text",
        json={"title": "Hours", "text": "The shop opens at nine in the morning."},
        headers=owner.headers,
    )
    assert added.status_code == 202
    return bot


def test_a_visitor_may_rate_only_answers_in_their_own_conversations(
    start_api: StartApi,
) -> None:
    api = start_api({"REDIS_URL": ""})  # in-process ingestion: no worker needed
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = _public_bot(client, owner)
        chat = client.post(
            f"/api/public/chatbots/{bot['id']}/chat",
            json={"message": "When does the shop open?", "session_id": "visitor-a"},
            headers={"Origin": ORIGIN},
        ).json()
        path = f"/api/public/chatbots/{bot['id']}/messages/{chat['message_id']}/feedback"

        other = client.post(path, json={"rating": "down", "session_id": "visitor-b"})
        assert_problem(other, 404)
        preflight = client.options(path, headers={"Origin": ORIGIN})
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        mine = client.post(
            path, json={"rating": "up", "session_id": "visitor-a"}, headers={"Origin": ORIGIN}
        )
        assert mine.status_code == 200, mine.text
        assert mine.headers["access-control-allow-origin"] == ORIGIN
        assert mine.json()["feedback"]["rating"] == "up"
        # The owner reads the rated conversation (a stored rating carries its time).
        detail = client.get(
            f"/api/chatbots/{bot['id']}/conversations/{chat['conversation_id']}",
            headers=owner.headers,
        )
        assert detail.status_code == 200, detail.text
        answer = detail.json()["messages"][-1]
        assert answer["feedback"]["rating"] == "up"
        assert answer["feedback"]["at"] is not None


@pytest.mark.parametrize("path", ["", "/chat"])
def test_a_rate_limited_widget_can_read_why(start_api: StartApi, path: str) -> None:
    api = start_api({"RATE_LIMIT_PUBLIC_PER_MINUTE": "1"}, private_redis=True)
    api.wait_ready()
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner, visibility="public", allowed_origins=[ORIGIN])
        url = f"/api/public/chatbots/{bot['id']}{path}"
        request: dict[str, Any] = {"json": {"message": "Hi", "session_id": "v"}} if path else {}
        method = client.post if path else client.get
        method(url, headers={"Origin": ORIGIN}, **request)
        refused = method(url, headers={"Origin": ORIGIN}, **request)
    assert_problem(refused, 429)
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    assert "Retry-After" in refused.headers["access-control-expose-headers"]


def test_the_demo_page_embeds_the_pinned_script_for_the_bot_given(api: ApiServer) -> None:
    empty = httpx.get(f"{api.base_url}/widget/demo")
    assert empty.status_code == 200
    assert "<form" in empty.text
    page = httpx.get(f"{api.base_url}/widget/demo", params={"chatbot_id": "abc123"})
    version = httpx.get(f"{api.base_url}/widget.js").headers["x-widget-version"]
    assert f'src="/widget/{version}/widget.js"' in page.text
    assert 'data-chatbot-id="abc123"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert_problem(httpx.get(f"{api.base_url}/widget/demo?chatbot_id=<script>"), 422)
