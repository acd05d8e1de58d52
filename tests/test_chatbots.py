"""Chatbots and their API keys, owned by one user and invisible to every other."""

import httpx

from tests.support.api import (
    assert_problem,
    bearer,
    create_api_key,
    create_chatbot,
    sign_up,
)
from tests.support.processes import poll_until


def test_a_new_chatbot_has_sensible_defaults(client: httpx.Client) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    assert chatbot["user_id"] == owner.id
    assert chatbot["visibility"] == "private"
    assert chatbot["status"] == "active"
    assert chatbot["model"]["provider"] == "offline"
    assert chatbot["retrieval"] == {
        "top_k": 5,
        "score_threshold": 0.5,
        "chunk_size": 1000,
        "chunk_overlap": 150,
    }
    fetched = client.get(f"/api/chatbots/{chatbot['id']}", headers=owner.headers)
    assert fetched.json() == chatbot


def test_listing_is_newest_first_paged_and_only_the_callers(client: httpx.Client) -> None:
    owner, other = sign_up(client), sign_up(client)
    names = [f"bot {n}" for n in range(5)]
    for name in names:
        create_chatbot(client, owner, name=name)
    create_chatbot(client, other, name="not yours")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/chatbots", params=params, headers=owner.headers).json()
        assert len(page["items"]) <= 2
        seen += [bot["name"] for bot in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(names))


def test_name_search_is_case_insensitive_and_treats_input_literally(client: httpx.Client) -> None:
    owner = sign_up(client)
    create_chatbot(client, owner, name="Billing Helper")
    create_chatbot(client, owner, name="Sales (EU)")
    create_chatbot(client, owner, name="Onboarding")

    def search(q: str) -> list[str]:
        page = client.get("/api/chatbots", params={"q": q}, headers=owner.headers).json()
        return sorted(bot["name"] for bot in page["items"])

    assert search("billing") == ["Billing Helper"]
    assert search("(eu)") == ["Sales (EU)"]
    assert search(".*") == []


def test_a_partial_update_changes_only_the_fields_sent(client: httpx.Client) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner, description="first")
    response = client.patch(
        f"/api/chatbots/{chatbot['id']}",
        json={
            "retrieval": {"top_k": 8},
            "visibility": "public",
            "allowed_origins": ["https://shop.example.com"],
        },
        headers=owner.headers,
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["retrieval"] == {**chatbot["retrieval"], "top_k": 8}
    assert updated["visibility"] == "public"
    assert updated["allowed_origins"] == ["https://shop.example.com"]
    assert updated["description"] == "first"
    assert updated["updated_at"] >= chatbot["updated_at"]


def test_invalid_settings_are_422_naming_the_field(client: httpx.Client) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    url = f"/api/chatbots/{chatbot['id']}"
    bad_temperature = client.patch(url, json={"model": {"temperature": 7}}, headers=owner.headers)
    assert assert_problem(bad_temperature, 422)["errors"][0]["field"] == "model.temperature"
    bad_origin = client.patch(
        url, json={"allowed_origins": ["javascript:alert(1)"]}, headers=owner.headers
    )
    assert assert_problem(bad_origin, 422)["errors"][0]["field"] == "allowed_origins.0"
    overlap = client.patch(url, json={"retrieval": {"chunk_overlap": 1500}}, headers=owner.headers)
    assert_problem(overlap, 422)
    injected = client.patch(url, json={"name": {"$set": {"user_id": "me"}}}, headers=owner.headers)
    assert assert_problem(injected, 422)["errors"][0]["field"] == "name"
    unknown = client.patch(url, json={"user_id": "someone-else"}, headers=owner.headers)
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "user_id"


def test_deleting_a_chatbot_removes_it_and_its_keys(client: httpx.Client) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    key = create_api_key(client, owner, chatbot["id"])
    assert client.delete(f"/api/chatbots/{chatbot['id']}", headers=owner.headers).status_code == 204
    assert_problem(client.get(f"/api/chatbots/{chatbot['id']}", headers=owner.headers), 404)
    listed = client.get("/api/chatbots", headers=owner.headers).json()["items"]
    assert chatbot["id"] not in [bot["id"] for bot in listed]
    # The key dies with its bot: once purged it is unknown, hence 401 rather than 403.
    poll_until(
        lambda: client.get("/api/users/me", headers=bearer(key["key"])).status_code,
        lambda status: status == 401,
        timeout=10,
    )


def test_an_api_key_is_shown_once_stored_by_prefix_and_revocable(client: httpx.Client) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    created = create_api_key(client, owner, chatbot["id"])
    assert created["key"].startswith("bsk_")
    assert created["key"].startswith(created["prefix"])
    assert len(created["key"]) > 40

    listed = client.get(f"/api/chatbots/{chatbot['id']}/api-keys", headers=owner.headers).json()
    assert [key["id"] for key in listed["items"]] == [created["id"]]
    assert listed["next_cursor"] is None
    assert "key" not in listed["items"][0]
    assert created["key"] not in str(listed)

    revoke = client.delete(
        f"/api/chatbots/{chatbot['id']}/api-keys/{created['id']}", headers=owner.headers
    )
    assert revoke.status_code == 204
    keys = client.get(f"/api/chatbots/{chatbot['id']}/api-keys", headers=owner.headers).json()
    assert keys["items"] == []
    again = client.delete(
        f"/api/chatbots/{chatbot['id']}/api-keys/{created['id']}", headers=owner.headers
    )
    assert_problem(again, 404)


def test_an_api_key_is_refused_on_owner_endpoints_with_403_and_401_once_revoked(
    client: httpx.Client,
) -> None:
    owner = sign_up(client)
    chatbot = create_chatbot(client, owner)
    key = create_api_key(client, owner, chatbot["id"])
    for headers in (bearer(key["key"]), {"X-API-Key": key["key"]}):
        assert_problem(client.get(f"/api/chatbots/{chatbot['id']}", headers=headers), 403)
    client.delete(f"/api/chatbots/{chatbot['id']}/api-keys/{key['id']}", headers=owner.headers)
    assert_problem(client.get(f"/api/chatbots/{chatbot['id']}", headers=bearer(key["key"])), 401)
