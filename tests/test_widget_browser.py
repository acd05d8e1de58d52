"""The embeddable widget in a real browser (Debian's Chromium, headless) against the real API,
ingestion worker, FerretDB and Redis: a customer's page on a loopback origin embeds the script."""

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Services
from tests.support.api import Account, create_chatbot, sign_up, wait_ready
from tests.support.browser import chromium
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.processes import ApiServer, IngestionWorker

ACCENT = "#e11d48"  # rgb(225, 29, 72)
MANUAL = """<html><head><title>Kettle manual</title></head><body><main>
<h1>Kettle manual</h1>
<p>The kettle boils one litre of water in about three minutes.</p>
<p>Its warranty lasts 24 months from the date of purchase.</p>
</main></body></html>"""
XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
# Hostile page styles: they must not reach into the widget.
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kettle shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  * {{ font-family: "Comic Sans MS", cursive !important; color: #00ff00 !important; }}
  button, textarea, section, div {{ all: unset !important; border: 5px solid red !important; }}
  h1 {{ font-size: 40px; }}
</style></head>
<body><h1>Kettle shop</h1><a href="#top">Our kettles</a>
<script src="{api}/widget.js" data-chatbot-id="{bot}" async></script>
</body></html>"""


class HostSite(LoopbackServer):
    """A customer's website on its own loopback origin, serving given pages."""

    def __init__(self, pages: dict[str, str]) -> None:
        self.pages = pages
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                body = site.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_body(404, "text/plain", b"not found")
                else:
                    self.send_body(200, "text/html; charset=utf-8", body.encode())

        super().__init__(Handler)
        self.origin = f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    api: ApiServer
    owner: Account
    bot: dict[str, Any]
    site: HostSite
    stranger: HostSite


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("widget")
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_STREAM": f"test:ingest:{uuid.uuid4().hex[:8]}",
        "INGEST_URL_ALLOWLIST": "127.0.0.1",  # the manual is served from loopback
    }
    with (
        HostSite({"/manual.html": MANUAL}) as site,
        HostSite({}) as stranger,
        ApiServer(workdir / "api", env, workers=2) as api,
        IngestionWorker(workdir, api.env),
        api.client() as client,
    ):
        api.wait_ready()
        owner = sign_up(client)
        bot = create_chatbot(
            client,
            owner,
            name="Kettle helper",
            visibility="public",
            allowed_origins=[site.origin],
            welcome_message="Hello! Ask me about your kettle.",
            # These tests are about what the widget shows, not about when the bot declines:
            # a threshold below the default keeps the one-line label source answerable.
            retrieval={"score_threshold": 0.3},
            appearance={
                "accent_color": ACCENT,
                "title": "Kettle help",
                "suggested_questions": ["What is the warranty?"],
            },
        )
        sources = [
            client.post(
                f"/api/chatbots/{bot['id']}/sources/url",
                json={"url": f"{site.origin}/manual.html"},
                headers=owner.headers,
            ),
            client.post(
                f"/api/chatbots/{bot['id']}/sources/text",
                json={"title": "Label", "text": f"The secret label reads {XSS} exactly."},
                headers=owner.headers,
            ),
        ]
        for response in sources:
            assert response.status_code == 202, response.text
            ready = wait_ready(client, owner, bot["id"], response.json()["id"])
            assert ready["status"] == "ready", ready
        page = HOST_PAGE.format(api=api.base_url, bot=bot["id"])
        site.pages["/"] = page
        stranger.pages["/"] = page
        yield Stack(api, owner, bot, site, stranger)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


def _ask(page: Page, question: str) -> float:
    """Sends a question with the keyboard; the seconds until the first streamed text."""
    box = page.locator("textarea")
    box.fill(question)
    answers = page.locator(".msg.bot:not(.error)")
    before = answers.count()
    started = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(
        """([selector, before]) => {
            const root = document.querySelector("botsmith-chat").shadowRoot;
            const bots = root.querySelectorAll(selector);
            return bots.length > before && bots[bots.length - 1].querySelector(".text").textContent;
        }""",
        arg=[".msg.bot:not(.error)", before],
        polling="raf",
    )
    first_text = time.perf_counter() - started
    expect(answers.last).not_to_have_attribute("aria-busy", "true")
    return first_text


def _conversations(stack: Stack) -> list[dict[str, Any]]:
    with stack.api.client() as client:
        response = client.get(
            f"/api/chatbots/{stack.bot['id']}/conversations", headers=stack.owner.headers
        )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_visitor_asks_and_sees_a_streamed_answer_with_a_citation_link(
    stack: Stack, page: Page
) -> None:
    page.goto(stack.site.origin + "/")
    launcher = page.locator(".launcher")
    expect(launcher).to_have_css("background-color", "rgb(225, 29, 72)")  # the bot's accent
    launcher.click()
    expect(page.locator("header h2")).to_have_text("Kettle help")
    expect(page.locator(".msg.bot").first).to_have_text("Hello! Ask me about your kettle.")
    expect(page.locator(".suggestions button")).to_have_text(["What is the warranty?"])

    first_token = _ask(page, "What is the warranty on the kettle?")
    answer = page.locator(".msg.bot").last
    expect(answer).to_contain_text("24 months")
    link = answer.locator(".sources a")
    expect(link).to_have_attribute("href", f"{stack.site.origin}/manual.html")
    expect(link).to_have_text("Kettle manual")
    print(f"\nfirst streamed text {first_token * 1000:.0f} ms after Enter")
    # The host page keeps its own look: the widget adds no global style.
    assert page.eval_on_selector("h1", "h => getComputedStyle(h).fontSize") == "40px"

    shots = os.environ.get("BOTSMITH_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "widget-desktop.png"))


def test_thumbs_up_is_stored_and_the_conversation_survives_a_reload(
    stack: Stack, page: Page
) -> None:
    page.goto(stack.site.origin + "/")
    page.locator(".launcher").click()
    _ask(page, "How long does the kettle take to boil?")
    answer = page.locator(".msg.bot").last
    # The button shows pressed at once; the rating is stored when its request is answered.
    with page.expect_response(lambda response: response.url.endswith("/feedback")) as sent:
        answer.locator("[data-rating=up]").click()
    assert sent.value.ok, sent.value.status
    expect(answer.locator("[data-rating=up]")).to_have_attribute("aria-pressed", "true")

    session = page.evaluate(
        "id => JSON.parse(localStorage.getItem('botsmith:' + id)).session", stack.bot["id"]
    )
    mine = [c for c in _conversations(stack) if c["session_id"] == session]
    assert len(mine) == 1
    with stack.api.client() as client:
        detail = client.get(
            f"/api/chatbots/{stack.bot['id']}/conversations/{mine[0]['id']}",
            headers=stack.owner.headers,
        ).json()
    assert "messages" in detail, detail
    rated = [m for m in detail["messages"] if m["role"] == "assistant"]
    assert rated[-1]["feedback"]["rating"] == "up"

    page.reload()
    page.locator(".launcher").click()
    expect(page.locator(".msg.user")).to_have_text(["How long does the kettle take to boil?"])
    expect(page.locator(".msg.bot").last).to_contain_text("three minutes")
    expect(page.locator(".msg.bot").last.locator("[data-rating=up]")).to_have_attribute(
        "aria-pressed", "true"
    )

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    _ask(page, "What is the warranty?")
    mine = [c for c in _conversations(stack) if c["session_id"] == session]
    assert len(mine) == 2  # a new conversation, same visitor


def test_a_page_on_an_origin_the_bot_does_not_allow_gets_the_error_state(
    stack: Stack, page: Page
) -> None:
    page.goto(stack.stranger.origin + "/")
    page.locator(".launcher").click()
    expect(page.locator(".status")).to_have_text("This chat isn't available here.")
    expect(page.locator("textarea")).to_be_disabled()


def test_what_the_bot_says_is_shown_as_text_and_runs_nothing(stack: Stack, page: Page) -> None:
    page.goto(stack.site.origin + "/")
    page.locator(".launcher").click()
    _ask(page, "What does the secret label read?")
    answer = page.locator(".msg.bot").last
    expect(answer).to_contain_text("<img src=x onerror=")
    assert answer.locator("img, script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_widget_works_from_the_keyboard_alone(stack: Stack, page: Page) -> None:
    page.goto(stack.site.origin + "/")
    page.wait_for_selector(".launcher")
    for _ in range(5):  # the page's own link first, then the launcher
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.shadowRoot?.activeElement?.className"):
            break
    focused = "document.activeElement.shadowRoot.activeElement"
    assert page.evaluate(f"{focused}.className") == "launcher"
    page.keyboard.press("Enter")
    assert page.evaluate(f"{focused}.tagName") == "TEXTAREA"
    page.keyboard.type("What is the warranty?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("24 months")
    expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("dialog")).to_have_attribute("aria-label", "Chat with Kettle help")
    page.keyboard.press("Escape")
    expect(page.locator(".panel")).to_be_hidden()
    assert page.evaluate(f"{focused}.className") == "launcher"


def test_on_a_phone_the_panel_fills_the_screen(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(stack.site.origin + "/")
        page.locator(".launcher").click()
        _ask(page, "What is the warranty?")
        box = page.locator(".panel").bounding_box()
        assert box is not None
        assert (box["width"], box["height"]) == (390, 844)
        shots = os.environ.get("BOTSMITH_SCREENSHOTS")
        if shots:
            page.screenshot(path=str(Path(shots) / "widget-phone.png"))
    finally:
        context.close()


def test_the_hosted_chat_page_answers_and_may_only_be_framed_by_allowed_origins(
    stack: Stack, page: Page
) -> None:
    response = httpx.get(f"{stack.api.base_url}/chat/{stack.bot['id']}")
    assert response.status_code == 200
    assert f"frame-ancestors {stack.site.origin};" in response.headers["content-security-policy"]
    page.goto(f"{stack.api.base_url}/chat/{stack.bot['id']}")
    expect(page.locator(".launcher")).to_have_count(0)  # the panel is the page
    _ask(page, "What is the warranty?")
    expect(page.locator(".msg.bot").last).to_contain_text("24 months")
