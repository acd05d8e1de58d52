"""Every owner-scoped route, listed from the application's own OpenAPI document, keeps owners
apart. New routes are covered automatically: an operation that declares security needs
authentication, and one that also takes a `chatbot_id` path parameter is owner-scoped.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from app.core.config import Settings
from app.main import create_app

from tests.support.api import (
    Account,
    assert_problem,
    bearer,
    create_api_key,
    create_chatbot,
    sign_up,
)
from tests.support.processes import TEST_JWT_SECRET, ApiServer

Operation = tuple[str, str]


def _secured_operations() -> list[tuple[Operation, set[str]]]:
    document = create_app(Settings(jwt_secret=TEST_JWT_SECRET)).openapi()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                names = {parameter["name"] for parameter in operation.get("parameters", [])}
                found.append(((method.upper(), path), names))
    return sorted(found)


AUTHENTICATED = [operation for operation, _ in _secured_operations()]
OWNER_SCOPED = [operation for operation, names in _secured_operations() if "chatbot_id" in names]


def test_the_route_lists_are_not_empty() -> None:
    assert ("GET", "/api/chatbots/{chatbot_id}") in OWNER_SCOPED
    assert ("DELETE", "/api/chatbots/{chatbot_id}/api-keys/{key_id}") in OWNER_SCOPED
    assert ("GET", "/api/users/me") in AUTHENTICATED
    assert set(OWNER_SCOPED) <= set(AUTHENTICATED)


@dataclass
class World:
    owner: Account
    stranger: Account
    chatbot: dict[str, Any]
    key: dict[str, Any]
    revoked_key: dict[str, Any]
    other_bots_key: dict[str, Any]

    def path(self, template: str) -> str:
        """The template with this world's ids; other parameters get a placeholder, since the
        ownership check comes before any lookup by them."""
        known = {
            "chatbot_id": self.chatbot["id"],
            "key_id": self.key["id"],
            "user_id": self.owner.id,
        }
        return template.format_map(defaultdict(lambda: "some-id", known))


@pytest.fixture(scope="module")
def world(api: ApiServer) -> World:
    with api.client() as client:
        owner, stranger = sign_up(client), sign_up(client)
        chatbot = create_chatbot(client, owner)
        key = create_api_key(client, owner, chatbot["id"])
        revoked = create_api_key(client, owner, chatbot["id"])
        client.delete(
            f"/api/chatbots/{chatbot['id']}/api-keys/{revoked['id']}", headers=owner.headers
        )
        other_bot = create_chatbot(client, owner, name="other")
        other_key = create_api_key(client, owner, other_bot["id"])
    return World(owner, stranger, chatbot, key, revoked, other_key)


def _call(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "template"), OWNER_SCOPED)
def test_another_owner_gets_404(
    client: httpx.Client, world: World, method: str, template: str
) -> None:
    response = _call(client, method, world.path(template), world.stranger.headers)
    assert_problem(response, 404)


@pytest.mark.parametrize(("method", "template"), AUTHENTICATED)
def test_an_anonymous_caller_gets_401(
    client: httpx.Client, world: World, method: str, template: str
) -> None:
    response = _call(client, method, world.path(template), {})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "template"), OWNER_SCOPED)
def test_a_revoked_key_gets_401(
    client: httpx.Client, world: World, method: str, template: str
) -> None:
    response = _call(client, method, world.path(template), bearer(world.revoked_key["key"]))
    assert_problem(response, 401)


@pytest.mark.parametrize(("method", "template"), OWNER_SCOPED)
def test_another_bots_key_gets_403_or_404(
    client: httpx.Client, world: World, method: str, template: str
) -> None:
    response = _call(
        client, method, world.path(template), {"X-API-Key": world.other_bots_key["key"]}
    )
    assert response.status_code in {403, 404}
    assert response.headers["content-type"] == "application/problem+json"


def test_the_owner_still_sees_the_bot_after_all_of_that(client: httpx.Client, world: World) -> None:
    response = client.get(world.path("/api/chatbots/{chatbot_id}"), headers=world.owner.headers)
    assert response.status_code == 200
