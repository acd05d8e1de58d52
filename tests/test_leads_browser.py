"""The widget's lead form in a real browser (Debian's Chromium, headless) against the real API,
FerretDB and Redis: a customer's page on a loopback origin embeds the script."""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Services
from tests.support.api import Account, create_chatbot, sign_up
from tests.support.browser import chromium
from tests.support.processes import ApiServer
from tests.support.site import Site

CONSENT = "I agree that Kettle Ltd may contact me about my question."
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kettle shop</title></head>
<body><h1>Kettle shop</h1>
<script src="API/widget.js" data-chatbot-id="BOT" async></script>
</body></html>"""


@dataclass
class Stack:
    api: ApiServer
    owner: Account
    site: Site
    at_start: dict[str, Any]
    on_unanswered: dict[str, Any]


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
    }
    with (
        Site({}) as site,
        ApiServer(tmp_path_factory.mktemp("leads"), env) as api,
        api.client() as client,
    ):
        api.wait_ready()
        owner = sign_up(client)
        common = {"visibility": "public", "allowed_origins": [site.base]}
        at_start = create_chatbot(
            client,
            owner,
            name="Kettle helper",
            welcome_message="Hello! Ask me about your kettle.",
            appearance={"accent_color": "#0f766e"},
            lead_form={
                "enabled": True,
                "trigger": "start",
                "fields": {"name": "required", "email": "required", "company": "optional"},
                "consent_text": CONSENT,
                "title": "Before we start",
                "submit_label": "Start chatting",
            },
            **common,
        )
        # No knowledge at all: every answer is "I don't know".
        on_unanswered = create_chatbot(
            client,
            owner,
            name="Kettle helper",
            lead_form={"enabled": True, "trigger": "unanswered", "title": "Can we call you?"},
            **common,
        )
        for path, bot in (("/", at_start), ("/unanswered", on_unanswered)):
            site.pages[path] = PAGE.replace("API", api.base_url).replace("BOT", bot["id"])
        yield Stack(api, owner, site, at_start, on_unanswered)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


def _screenshot(page: Page, name: str) -> None:
    shots = os.environ.get("BOTSMITH_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / name))


def _leads(stack: Stack, bot: dict[str, Any]) -> list[dict[str, Any]]:
    with stack.api.client() as client:
        response = client.get(f"/api/chatbots/{bot['id']}/leads", headers=stack.owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _session(page: Page, bot: dict[str, Any]) -> str:
    session: str = page.evaluate(
        "id => JSON.parse(localStorage.getItem('botsmith:' + id)).session", bot["id"]
    )
    return session


def test_the_form_comes_first_checks_the_details_and_stores_the_lead(
    stack: Stack, page: Page
) -> None:
    page.goto(stack.site.base + "/")
    page.locator(".launcher").click()
    card = page.locator("form.lead")
    expect(card.locator("h3")).to_have_text("Before we start")
    expect(page.get_by_label("Your message")).to_be_hidden()  # the chat waits for the form

    card.get_by_role("button", name="Start chatting").click()
    expect(card.locator(".problem")).to_have_text(
        ["Please fill this in.", "Please fill this in.", "", "Please agree to continue."]
    )
    expect(card.locator("input[name=email]")).to_have_attribute("aria-invalid", "true")

    card.locator("input[name=name]").fill("Ada Lovelace")
    card.locator("input[name=email]").fill("ada@example.invalid")  # the server refuses it
    card.locator("input[name=company]").fill("=HYPERLINK(1)")
    card.get_by_label(CONSENT).check()
    card.get_by_role("button", name="Start chatting").click()
    expect(card.locator(".alert")).to_have_text("Please check the highlighted fields.")
    expect(card.locator("#bs-lead-email")).to_contain_text("special-use or reserved name")
    _screenshot(page, "lead-form-errors.png")
    assert _leads(stack, stack.at_start) == []

    card.locator("input[name=email]").fill("ada@example.com")
    card.get_by_role("button", name="Start chatting").click()
    expect(page.locator(".msg.bot").last).to_have_text("Thank you! We'll be in touch.")
    expect(card).to_have_count(0)
    expect(page.get_by_label("Your message")).to_be_visible()
    _screenshot(page, "lead-form-thanks.png")

    session = _session(page, stack.at_start)
    stored = [lead for lead in _leads(stack, stack.at_start) if lead["session_id"] == session]
    assert len(stored) == 1
    lead = stored[0]
    assert (lead["name"], lead["email"], lead["company"]) == (
        "Ada Lovelace",
        "ada@example.com",
        "=HYPERLINK(1)",
    )
    assert lead["consent"]["text"] == CONSENT
    assert lead["origin"] == "widget"

    page.reload()
    page.locator(".launcher").click()
    expect(page.get_by_label("Your message")).to_be_visible()
    expect(page.locator("form.lead")).to_have_count(0)  # once per session


def test_an_unanswered_question_brings_the_form_which_can_be_declined(
    stack: Stack, page: Page
) -> None:
    page.goto(stack.site.base + "/unanswered")
    page.locator(".launcher").click()
    expect(page.locator("form.lead")).to_have_count(0)
    box = page.get_by_label("Your message")
    box.fill("Do you ship kettles to Norway?")
    box.press("Enter")
    card = page.locator("form.lead")
    expect(card.locator("h3")).to_have_text("Can we call you?")
    expect(page.locator(".msg.bot").nth(-1)).not_to_have_attribute("aria-busy", "true")
    _screenshot(page, "lead-form-unanswered.png")

    card.get_by_role("button", name="Not now").click()
    expect(card).to_have_count(0)
    page.reload()
    page.locator(".launcher").click()
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator("form.lead")).to_have_count(0)
    assert _leads(stack, stack.on_unanswered) == []
