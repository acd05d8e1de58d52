"""Caps on what one account can pile up: chatbots per account, live API keys per bot (listed a
page at a time), and a source queued at most once at a time."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import StartApi
from tests.support.api import (
    assert_problem,
    create_api_key,
    create_chatbot,
    sign_up,
    wait_ready,
)
from tests.support.processes import IngestionWorker


def test_concurrent_creations_never_pass_the_chatbot_cap(start_api: StartApi) -> None:
    api = start_api({"MAX_CHATBOTS_PER_USER": "3"})
    with api.client() as client:
        owner = sign_up(client)

        def create(number: int) -> int:
            with api.client() as own:
                body = {"name": f"bot {number}"}
                return own.post("/api/chatbots", json=body, headers=owner.headers).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(create, range(8)))
        assert set(statuses) <= {201, 409}, statuses
        listed = client.get("/api/chatbots", headers=owner.headers).json()["items"]
        assert len(listed) == statuses.count(201) <= 3

        # Refusals under contention may be eager; one at a time the cap is exactly 3.
        while len(client.get("/api/chatbots", headers=owner.headers).json()["items"]) < 3:
            create_chatbot(client, owner)
        refused = assert_problem(
            client.post("/api/chatbots", json={"name": "one too many"}, headers=owner.headers), 409
        )
        assert "MAX_CHATBOTS_PER_USER" in refused["detail"]

        first = client.get("/api/chatbots", headers=owner.headers).json()["items"][0]
        assert (
            client.delete(f"/api/chatbots/{first['id']}", headers=owner.headers).status_code == 204
        )
        assert create_chatbot(client, owner)["name"]


def test_live_api_keys_are_capped_and_listed_a_page_at_a_time(start_api: StartApi) -> None:
    api = start_api({"MAX_API_KEYS_PER_CHATBOT": "2"})
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        first, second = create_api_key(client, owner, bot), create_api_key(client, owner, bot)
        keys_url = f"/api/chatbots/{bot}/api-keys"
        refused = assert_problem(
            client.post(keys_url, json={"name": "third"}, headers=owner.headers), 409
        )
        assert "MAX_API_KEYS_PER_CHATBOT" in refused["detail"]

        page = client.get(keys_url, params={"limit": 1}, headers=owner.headers).json()
        assert [key["id"] for key in page["items"]] == [second["id"]]
        rest = client.get(
            keys_url, params={"limit": 1, "cursor": page["next_cursor"]}, headers=owner.headers
        ).json()
        assert [key["id"] for key in rest["items"]] == [first["id"]]
        assert rest["next_cursor"] is None

        revoked = client.delete(f"{keys_url}/{first['id']}", headers=owner.headers)
        assert revoked.status_code == 204
        assert create_api_key(client, owner, bot)["key"].startswith("bsk_")


def test_a_source_is_queued_again_only_once_it_has_settled(
    start_api: StartApi, tmp_path: Path
) -> None:
    api = start_api()  # with Redis: sources wait for a `botsmith worker`, none runs yet
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        created = client.post(
            f"/api/chatbots/{bot}/sources/text",
            json={"title": "Kettle", "text": "Its warranty lasts 24 months from purchase."},
            headers=owner.headers,
        ).json()
        resync = f"/api/chatbots/{bot}/sources/{created['id']}/resync"
        waiting = assert_problem(client.post(resync, headers=owner.headers), 409)
        assert "already waiting" in waiting["detail"]

        with IngestionWorker(tmp_path / "worker", api.env):
            assert wait_ready(client, owner, bot, created["id"])["status"] == "ready"
        again = client.post(resync, headers=owner.headers)
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        assert_problem(client.post(resync, headers=owner.headers), 409)

        missing = client.post(f"/api/chatbots/{bot}/sources/nope/resync", headers=owner.headers)
        assert_problem(missing, 404)


def test_a_source_that_failed_may_be_queued_again(start_api: StartApi, tmp_path: Path) -> None:
    api = start_api()
    with api.client() as client, IngestionWorker(tmp_path / "worker", api.env):
        owner = sign_up(client)
        bot = create_chatbot(client, owner)["id"]
        upload = client.post(
            f"/api/chatbots/{bot}/sources/file",
            files={"file": ("broken.pdf", b"%PDF-1.4 not really a pdf", "application/pdf")},
            headers=owner.headers,
        )
        assert upload.status_code == 202, upload.text
        assert wait_ready(client, owner, bot, upload.json()["id"])["status"] == "failed"
        resync = f"/api/chatbots/{bot}/sources/{upload.json()['id']}/resync"
        assert client.post(resync, headers=owner.headers).status_code == 202
        assert wait_ready(client, owner, bot, upload.json()["id"])["status"] == "failed"
