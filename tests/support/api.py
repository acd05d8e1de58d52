"""Helpers that speak to a running API as a client application would."""

import json
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.processes import ROOT, VENV_BIN, poll_until

PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def sign_up(client: httpx.Client, email: str | None = None) -> Account:
    email = email or unique_email()
    response = client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    tokens = login(client, email)
    return Account(
        id=response.json()["id"],
        email=email,
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


def create_chatbot(client: httpx.Client, owner: Account, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/chatbots", json={"name": "Support bot", **fields}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    chatbot: dict[str, Any] = response.json()
    return chatbot


def create_api_key(client: httpx.Client, owner: Account, chatbot_id: str) -> dict[str, Any]:
    response = client.post(
        f"/api/chatbots/{chatbot_id}/api-keys", json={"name": "website"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    return body


def analytics_command(
    api_env: dict[str, str], action: str, chatbot_id: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `botsmith analytics backfill|check` against the API's database."""
    flags = ["--chatbot", chatbot_id] if chatbot_id else []
    return subprocess.run(
        [str(VENV_BIN / "botsmith"), "analytics", action, *flags],
        capture_output=True,
        text=True,
        env=api_env,
        cwd=ROOT,
        timeout=120,
    )


def create_admin(
    api_env: dict[str, str], email: str, password: str = PASSWORD, *, promote: bool = False
) -> subprocess.CompletedProcess[str]:
    """Runs `botsmith create-admin` against the API's database, as an operator would."""
    flags = ["--promote-existing"] if promote else []
    return subprocess.run(
        [str(VENV_BIN / "botsmith"), "create-admin", "--email", email, "--password-stdin", *flags],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        env=api_env,
        cwd=ROOT,
        timeout=60,
    )


def wait_ready(
    client: httpx.Client, owner: Account, chatbot_id: str, source_id: str
) -> dict[str, Any]:
    def status() -> dict[str, Any]:
        response = client.get(
            f"/api/chatbots/{chatbot_id}/sources/{source_id}", headers=owner.headers
        )
        body: dict[str, Any] = response.json()
        return body

    return poll_until(status, lambda s: s["status"] in {"ready", "failed"}, 30)


def add_text(
    client: httpx.Client, owner: Account, bot: str, title: str, text: str
) -> dict[str, Any]:
    """Adds a text source and waits until it is processed."""
    response = client.post(
        f"/api/chatbots/{bot}/sources/text",
        json={"title": title, "text": text},
        headers=owner.headers,
    )
    assert response.status_code == 202, response.text
    return wait_ready(client, owner, bot, response.json()["id"])


def read_sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a streamed text/event-stream response."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events
