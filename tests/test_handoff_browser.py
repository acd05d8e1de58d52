"""Human handoff in the widget, in a real browser (Debian's Chromium, headless) against the real
API (two workers), FerretDB and Redis: the visitor's "Talk to a person" starts a handoff, and an
agent's reply sent through the API appears in the widget under the agent's name."""

import os
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Services
from tests.support.api import create_chatbot, sign_up
from tests.support.browser import chromium
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.processes import ApiServer

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kettle shop</title></head>
<body><h1>Kettle shop</h1>
<script src="{api}/widget.js" data-chatbot-id="{bot}" async></script>
</body></html>"""


class HostSite(LoopbackServer):
    """A customer's website on its own loopback origin, serving one page."""

    def __init__(self) -> None:
        self.page = ""
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.send_body(200, "text/html; charset=utf-8", site.page.encode())

        super().__init__(Handler)
        self.origin = f"http://127.0.0.1:{self.port}"


def test_the_widget_button_starts_a_handoff_and_shows_the_agent_reply_with_the_agent_name(
    services: Services, tmp_path: Path
) -> None:
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
    }
    with (
        HostSite() as site,
        ApiServer(tmp_path / "api", env, workers=2) as api,
        api.client() as client,
        chromium() as browser,
    ):
        api.wait_ready()
        owner, agent = sign_up(client), sign_up(client)
        bot: dict[str, Any] = create_chatbot(
            client,
            owner,
            name="Kettle helper",
            visibility="public",
            allowed_origins=[site.origin],
            handoff={"enabled": True},
        )
        bot_id = bot["id"]
        invited = client.post(
            f"/api/chatbots/{bot_id}/agents",
            json={"email": agent.email, "display_name": "Maria from support"},
            headers=owner.headers,
        )
        assert invited.status_code == 201, invited.text
        site.page = HOST_PAGE.format(api=api.base_url, bot=bot_id)

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(site.origin + "/")
        page.locator(".launcher").click()
        button = page.get_by_role("button", name="Talk to a person")
        expect(button).to_be_visible()
        button.click()
        expect(page.locator(".handoff .note")).to_have_text("Waiting for a person to join…")
        expect(button).to_be_hidden()

        waiting = client.get(
            f"/api/chatbots/{bot_id}/handoffs", params={"state": "waiting"}, headers=agent.headers
        ).json()["items"]
        assert len(waiting) == 1
        conversation = waiting[0]["conversation_id"]
        claimed = client.post(
            f"/api/chatbots/{bot_id}/handoffs/{conversation}/claim", headers=agent.headers
        )
        assert claimed.status_code == 200, claimed.text
        expect(page.locator(".handoff .note")).to_have_text(
            "You're chatting with Maria from support."
        )
        reply = client.post(
            f"/api/chatbots/{bot_id}/handoffs/{conversation}/messages",
            json={"content": "Hello! I can help with your kettle order."},
            headers=agent.headers,
        )
        assert reply.status_code == 201, reply.text
        message = page.locator(".msg.agent")
        expect(message).to_have_count(1)
        expect(message.locator(".who")).to_have_text("Maria from support")
        expect(message.locator(".text")).to_have_text("Hello! I can help with your kettle order.")

        # While the agent has it, the visitor's message gets no bot answer.
        answers = page.locator(".msg.bot")
        before = answers.count()
        box = page.locator("textarea")
        box.fill("Great, thank you")
        box.press("Enter")
        expect(page.locator(".msg.user").last).to_have_text("Great, thank you")
        expect(page.locator(".msg[aria-busy='true']")).to_have_count(0)
        expect(answers).to_have_count(before)
        shots = os.environ.get("BOTSMITH_SCREENSHOTS")
        if shots:
            page.screenshot(path=str(Path(shots) / "widget-handoff.png"))

        closed = client.post(
            f"/api/chatbots/{bot_id}/handoffs/{conversation}/close", headers=agent.headers
        )
        assert closed.status_code == 200, closed.text
        expect(page.locator(".handoff .note")).to_have_text(
            "Maria from support has left; the assistant answers again."
        )
        expect(button).to_be_visible()
        context.close()
