"""The audit log: each security-relevant action leaves one entry naming its actor, target,
client address and request id; administrators list them all, owners their own; entries never
hold a secret, and expire after AUDIT_RETENTION_DAYS."""

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from app.audit.log import email_target, record_audit
from app.audit.repository import AuditRepository
from app.audit.service import purge_expired
from app.core.config import Settings
from app.core.resources import Resources, close_resources, open_resources
from pymongo import MongoClient

from tests.conftest import Services, StartApi
from tests.support.api import (
    PASSWORD,
    Account,
    assert_problem,
    create_admin,
    create_api_key,
    create_chatbot,
    login,
    sign_up,
    unique_email,
)
from tests.support.metrics import scrape, value
from tests.support.processes import TEST_JWT_SECRET, ApiServer, poll_until

PROXY_ENV = {"TRUSTED_PROXIES": "127.0.0.1/32", "LOGIN_MAX_FAILURES": "1000"}
NEW_PASSWORD = "a brand new passphrase"
Entry = dict[str, Any]


@pytest.fixture(scope="module")
def audited_api(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API behind a trusted proxy (127.0.0.1), so X-Forwarded-For names the client."""
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": services.redis_url,
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        **PROXY_ENV,
    }
    with ApiServer(tmp_path_factory.mktemp("audit"), env) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def mongo(audited_api: ApiServer) -> Iterator[MongoClient[dict[str, Any]]]:
    with MongoClient[dict[str, Any]](audited_api.env["MONGO_URL"], tz_aware=True) as client:
        yield client


@dataclass
class Caller:
    """Sends each request as if through the trusted proxy from `address`, with a fresh
    X-Request-ID; remembers the ids it sent."""

    http: httpx.Client
    address: str
    sent: list[str] = field(default_factory=list)

    def __call__(self, method: str, path: str, **options: Any) -> tuple[httpx.Response, str]:
        request_id = f"audit-{uuid.uuid4().hex}"
        headers = {
            **options.pop("headers", {}),
            "X-Forwarded-For": self.address,
            "X-Request-ID": request_id,
        }
        response = self.http.request(method, path, headers=headers, **options)
        assert response.headers["x-request-id"] == request_id
        self.sent.append(request_id)
        return response, request_id


def stored(mongo: MongoClient[dict[str, Any]], api: ApiServer, **criteria: Any) -> list[Entry]:
    entries = mongo[api.env["DB_NAME"]]["audit_log"].find(criteria, {"_id": 0})
    return list(entries)


def only_entry(
    mongo: MongoClient[dict[str, Any]], api: ApiServer, request_id: str, action: str
) -> Entry:
    found = stored(mongo, api, request_id=request_id, action=action)
    assert len(found) == 1, found
    return found[0]


def unkeyed_digest(email: str) -> str:
    """What anyone could compute from a guessed address."""
    return "email:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]


@dataclass
class Story:
    """What the module's actions were, for the tests that look at what they left."""

    owner: Account
    admin: Account
    entries: dict[str, Entry]
    secrets: list[str]
    unknown_email: str


@pytest.fixture(scope="module")
def story(audited_api: ApiServer, mongo: MongoClient[dict[str, Any]]) -> Story:
    """An owner and an administrator go through every recorded action once, each request
    with its own request id, from a known client address."""
    api = audited_api
    admin_email = unique_email("admin")
    created = create_admin(api.env, admin_email)
    assert created.returncode == 0, created.stderr
    entries: dict[str, Entry] = {}
    secrets: list[str] = [PASSWORD, NEW_PASSWORD]
    with api.client() as http:
        owner = sign_up(http)
        admin_tokens = login(http, admin_email)
        me = http.get(
            "/api/users/me", headers={"Authorization": f"Bearer {admin_tokens['access_token']}"}
        )
        admin = Account(
            me.json()["id"],
            admin_email,
            PASSWORD,
            admin_tokens["access_token"],
            admin_tokens["refresh_token"],
        )
        call = Caller(http, "203.0.113.7")

        def record(name: str, request_id: str, action: str) -> None:
            entries[name] = only_entry(mongo, api, request_id, action)

        response, request_id = call(
            "POST", "/api/auth/login", json={"email": owner.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        secrets += [tokens["access_token"], tokens["refresh_token"]]
        owner.access_token, owner.refresh_token = tokens["access_token"], tokens["refresh_token"]
        record("login", request_id, "auth.login")

        response, request_id = call(
            "POST", "/api/auth/login", json={"email": owner.email, "password": "not it at all"}
        )
        assert_problem(response, 401)
        record("login_wrong_password", request_id, "auth.login")
        secrets.append("not it at all")

        unknown_email = unique_email("nobody")
        response, request_id = call(
            "POST", "/api/auth/login", json={"email": unknown_email, "password": "guess guess"}
        )
        assert_problem(response, 401)
        record("login_unknown_email", request_id, "auth.login")

        chatbot = create_chatbot(http, owner)
        response, request_id = call(
            "POST",
            f"/api/chatbots/{chatbot['id']}/api-keys",
            json={"name": "website"},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        key = response.json()
        secrets.append(key["key"])
        record("api_key_create", request_id, "api_key.create")

        response, request_id = call(
            "DELETE", f"/api/chatbots/{chatbot['id']}/api-keys/{key['id']}", headers=owner.headers
        )
        assert response.status_code == 204, response.text
        record("api_key_revoke", request_id, "api_key.revoke")

        response, request_id = call(
            "PATCH",
            f"/api/chatbots/{chatbot['id']}",
            json={"visibility": "public"},
            headers=owner.headers,
        )
        assert response.status_code == 200, response.text
        record("visibility", request_id, "chatbot.visibility_change")

        response, request_id = call(
            "GET", f"/api/chatbots/{chatbot['id']}/conversations/export", headers=owner.headers
        )
        assert response.status_code == 200, response.text
        record("conversations_export", request_id, "conversations.export")

        response, request_id = call(
            "GET",
            f"/api/chatbots/{chatbot['id']}/leads/export",
            params={"format": "csv"},
            headers=owner.headers,
        )
        assert response.status_code == 200, response.text
        record("leads_export", request_id, "leads.export")

        response, request_id = call(
            "PUT",
            "/api/admin/models",
            json={"models": ["test-model", "other-model"], "max_tokens_ceiling": 2048},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        record("admin_models", request_id, "admin.put_model_allowlist")

        response, request_id = call(
            "PUT",
            f"/api/admin/users/{owner.id}/llm-budget",
            json={"daily_tokens": 5000, "monthly_tokens": 50000},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        record("admin_budget", request_id, "admin.put_llm_budget")

        response, request_id = call(
            "PATCH", f"/api/admin/users/{owner.id}", json={"role": "admin"}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        record("role", request_id, "user.role_change")
        record("admin_update_user", request_id, "admin.update_user")

        response, request_id = call(
            "PATCH", f"/api/admin/users/{owner.id}", json={"role": "user"}, headers=admin.headers
        )
        assert response.status_code == 200, response.text

        response, request_id = call(
            "PATCH", f"/api/admin/users/{admin.id}", json={"role": "user"}, headers=admin.headers
        )
        assert_problem(response, 409)
        record("admin_refused", request_id, "admin.update_user")

        response, request_id = call(
            "POST",
            "/api/users/me/password",
            json={"current_password": "wrong password", "new_password": NEW_PASSWORD},
            headers=owner.headers,
        )
        assert_problem(response, 400)
        record("password_wrong", request_id, "user.password_change")

        response, request_id = call(
            "POST",
            "/api/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=owner.headers,
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        secrets += [tokens["access_token"], tokens["refresh_token"]]
        owner.access_token, owner.refresh_token = tokens["access_token"], tokens["refresh_token"]
        record("password", request_id, "user.password_change")

        new_email = unique_email("moved")
        response, request_id = call(
            "PATCH",
            "/api/users/me",
            json={"email": new_email, "current_password": NEW_PASSWORD},
            headers=owner.headers,
        )
        assert response.status_code == 200, response.text
        record("email", request_id, "user.email_change")
        owner.email = new_email

        tokens = login(http, new_email, NEW_PASSWORD)
        secrets += [tokens["access_token"], tokens["refresh_token"]]
        owner.access_token, owner.refresh_token = tokens["access_token"], tokens["refresh_token"]
        response, request_id = call(
            "POST", "/api/auth/logout", json={"refresh_token": owner.refresh_token}
        )
        assert response.status_code == 204, response.text
        record("logout", request_id, "auth.logout")

        response, request_id = call(
            "PATCH",
            f"/api/admin/users/{owner.id}",
            json={"status": "suspended"},
            headers=admin.headers,
        )
        assert response.status_code == 200, response.text
        record("status", request_id, "user.status_change")
    return Story(owner, admin, entries, secrets, unknown_email)


def test_each_action_names_its_actor_target_client_and_request_id(story: Story) -> None:
    owner, admin = story.owner, story.admin
    user = f"user:{owner.id}"
    expected = {
        "login": (owner.id, user, "success"),
        "login_wrong_password": (None, user, "failure"),
        "visibility": (owner.id, None, "success"),
        "conversations_export": (owner.id, None, "success"),
        "leads_export": (owner.id, None, "success"),
        "admin_models": (admin.id, None, "success"),
        "admin_budget": (admin.id, user, "success"),
        "role": (admin.id, user, "success"),
        "admin_update_user": (admin.id, user, "success"),
        "admin_refused": (admin.id, f"user:{admin.id}", "failure"),
        "password_wrong": (owner.id, user, "failure"),
        "password": (owner.id, user, "success"),
        "email": (owner.id, user, "success"),
        "logout": (owner.id, user, "success"),
        "status": (admin.id, user, "success"),
        "api_key_create": (owner.id, None, "success"),
        "api_key_revoke": (owner.id, None, "success"),
    }
    for name, (actor, target, outcome) in expected.items():
        entry = story.entries[name]
        assert entry["actor_id"] == actor, (name, entry)
        if target is not None:
            assert entry["target"] == target, (name, entry)
        assert entry["outcome"] == outcome, (name, entry)
        assert entry["client"] == "203.0.113.7", (name, entry)
        assert entry["request_id"].startswith("audit-"), (name, entry)
        assert isinstance(entry["created_at"], datetime)
    entries = story.entries
    assert entries["visibility"]["target"].startswith("chatbot:")
    assert entries["visibility"]["details"] == {"from": "private", "to": "public"}
    assert entries["role"]["details"] == {"from": "user", "to": "admin"}
    assert entries["status"]["details"] == {"from": "active", "to": "suspended"}
    assert entries["admin_refused"]["details"] == {"status": 409}
    assert entries["leads_export"]["details"] == {"format": "csv"}
    created, revoked = entries["api_key_create"], entries["api_key_revoke"]
    assert created["target"] == revoked["target"]
    assert created["target"].startswith("api_key:")
    assert created["details"]["prefix"] == revoked["details"]["prefix"]
    assert created["owner_id"] == owner.id


def test_a_failed_login_for_an_unknown_email_names_its_keyed_digest_not_the_address(
    story: Story, audited_api: ApiServer, mongo: MongoClient[dict[str, Any]]
) -> None:
    entry = story.entries["login_unknown_email"]
    assert entry["outcome"] == "failure"
    assert entry["actor_id"] is None
    assert entry["target"].startswith("email:")
    assert entry["target"] != unkeyed_digest(story.unknown_email)
    assert entry["details"] == {"reason": "invalid_credentials"}
    assert story.unknown_email not in json.dumps(entry, default=str)
    with audited_api.client() as http:
        again = http.post(
            "/api/auth/login",
            json={"email": story.unknown_email.upper(), "password": "another guess"},
        )
        assert_problem(again, 401)
    # The same address always gives the same target, so its attempts can be found together.
    assert len(stored(mongo, audited_api, target=entry["target"])) == 2


def test_an_email_digest_is_keyed_with_the_server_secret() -> None:
    email = "someone@example.com"
    ours = Settings(jwt_secret=TEST_JWT_SECRET)
    theirs = Settings(jwt_secret=TEST_JWT_SECRET + "-elsewhere")
    assert email_target(ours, email) == email_target(ours, " Someone@Example.com ")
    assert email_target(ours, email) != email_target(theirs, email)
    assert unkeyed_digest(email) not in {email_target(ours, email), email_target(theirs, email)}


def test_the_stored_entries_never_hold_a_password_key_or_token(
    story: Story, audited_api: ApiServer, mongo: MongoClient[dict[str, Any]]
) -> None:
    raw = [json.dumps(entry, default=str) for entry in stored(mongo, audited_api)]
    assert len(raw) >= len(story.entries)
    for secret in story.secrets:
        assert not any(secret in entry for entry in raw), secret


def test_administrators_filter_the_log_and_page_through_it_without_gaps(
    story: Story, audited_api: ApiServer, mongo: MongoClient[dict[str, Any]]
) -> None:
    admin = story.admin
    with audited_api.client() as http:
        victim = sign_up(http)
        for _ in range(7):
            refused = http.post(
                "/api/auth/login", json={"email": victim.email, "password": "wrong guess"}
            )
            assert_problem(refused, 401)
        target = f"user:{victim.id}"
        every = stored(mongo, audited_api, target=target)
        seen: list[Entry] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"target": target, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/api/admin/audit", params=params, headers=admin.headers)
            assert page.status_code == 200, page.text
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        ids = [entry["id"] for entry in seen]
        assert len(ids) == len(set(ids)) == len(every) == 8  # the sign-up's login, 7 refused
        assert {entry["id"] for entry in every} == set(ids)
        times = [datetime.fromisoformat(entry["created_at"]) for entry in seen]
        assert times == sorted(times, reverse=True)

        failures = http.get(
            "/api/admin/audit",
            params={"target": target, "action": "auth.login", "limit": 100},
            headers=admin.headers,
        ).json()["items"]
        assert len([e for e in failures if e["outcome"] == "failure"]) == 7

        by_actor = http.get(
            "/api/admin/audit",
            params={"actor_id": story.owner.id, "limit": 100},
            headers=admin.headers,
        ).json()["items"]
        assert by_actor
        assert all(entry["actor_id"] == story.owner.id for entry in by_actor)

        middle = times[4]
        window = http.get(
            "/api/admin/audit",
            params={
                "target": target,
                "since": middle.isoformat(),
                "until": (times[0] + timedelta(milliseconds=1)).isoformat(),
                "limit": 100,
            },
            headers=admin.headers,
        ).json()["items"]
        assert {entry["id"] for entry in window} == {
            entry["id"] for entry in seen if datetime.fromisoformat(entry["created_at"]) >= middle
        }

        assert_problem(http.get("/api/admin/audit", headers=victim.headers), 403)
        assert_problem(
            http.get("/api/admin/audit", params={"cursor": "nonsense!"}, headers=admin.headers), 400
        )


def test_owners_see_only_what_they_did_and_what_was_done_to_them(
    story: Story, audited_api: ApiServer
) -> None:
    with audited_api.client() as http:
        owner = sign_up(http)
        other = sign_up(http)
        chatbot = create_chatbot(http, owner)
        create_api_key(http, owner, chatbot["id"])
        create_chatbot(http, other)
        refused = http.post("/api/auth/login", json={"email": owner.email, "password": "nope"})
        assert_problem(refused, 401)
        changed = http.put(
            f"/api/admin/users/{owner.id}/llm-budget",
            json={"daily_tokens": 10},
            headers=story.admin.headers,
        )
        assert changed.status_code == 200, changed.text

        mine = http.get("/api/audit", params={"limit": 100}, headers=owner.headers).json()
        assert mine["next_cursor"] is None
        actions = sorted((entry["action"], entry["outcome"]) for entry in mine["items"])
        assert actions == [
            ("admin.put_llm_budget", "success"),
            ("api_key.create", "success"),
            ("auth.login", "failure"),
            ("auth.login", "success"),
        ]
        assert all(owner.id in (entry["actor_id"], entry["owner_id"]) for entry in mine["items"])
        theirs = http.get("/api/audit", headers=other.headers).json()["items"]
        assert theirs[0]["client"] is not None
        assert theirs[0]["request_id"] is not None
        assert [entry["action"] for entry in theirs] == ["auth.login"]
        assert theirs[0]["actor_id"] == other.id
        assert_problem(http.get("/api/audit"), 401)


def test_an_owner_sees_an_administrators_entry_without_its_client_address_or_request_id(
    story: Story, audited_api: ApiServer
) -> None:
    with audited_api.client() as http:
        admin_call = Caller(http, "198.51.100.20")
        owner = sign_up(http)
        for method, path, body in [
            ("PUT", f"/api/admin/users/{owner.id}/llm-budget", {"daily_tokens": 10}),
            ("PATCH", f"/api/admin/users/{owner.id}", {"status": "suspended"}),
            ("PATCH", f"/api/admin/users/{owner.id}", {"status": "active"}),
        ]:
            response, _ = admin_call(method, path, json=body, headers=story.admin.headers)
            assert response.status_code == 200, response.text
        owner_tokens = login(http, owner.email)
        owner.access_token = owner_tokens["access_token"]
        mine = http.get("/api/audit", params={"limit": 100}, headers=owner.headers).json()
        by_admin = [entry for entry in mine["items"] if entry["actor_id"] == story.admin.id]
        assert {entry["action"] for entry in by_admin} == {
            "admin.put_llm_budget",
            "admin.update_user",
            "user.status_change",
        }
        assert all(entry["client"] is None for entry in by_admin), by_admin
        assert all(entry["request_id"] is None for entry in by_admin), by_admin
        own = [entry for entry in mine["items"] if entry["actor_id"] == owner.id]
        assert own
        assert all(entry["client"] and entry["request_id"] for entry in own), own

        # Administrators still see where each action came from.
        everything = http.get(
            "/api/admin/audit",
            params={"target": f"user:{owner.id}", "limit": 100},
            headers=story.admin.headers,
        ).json()["items"]
        from_admin = [entry for entry in everything if entry["actor_id"] == story.admin.id]
        assert len(from_admin) == len(by_admin)
        assert {entry["client"] for entry in from_admin} == {"198.51.100.20"}
        assert {entry["request_id"] for entry in from_admin} <= set(admin_call.sent)


def test_an_administrator_route_refused_to_a_signed_in_user_is_recorded_as_denied(
    audited_api: ApiServer, mongo: MongoClient[dict[str, Any]]
) -> None:
    with audited_api.client() as http:
        prober = sign_up(http)
        victim = sign_up(http)
        call = Caller(http, "192.0.2.44")
        attempts = [
            ("PUT", "/api/admin/models", {"models": ["x"], "max_tokens_ceiling": 1}),
            ("GET", "/api/admin/users", None),
            ("PUT", f"/api/admin/users/{victim.id}/plan", {}),
            ("GET", "/api/admin/audit", None),
        ]
        denied: dict[str, Entry] = {}
        for method, path, body in attempts:
            options: dict[str, Any] = {"headers": prober.headers}
            if body is not None:
                options["json"] = body
            response, request_id = call(method, path, **options)
            assert_problem(response, 403)
            found = stored(mongo, audited_api, request_id=request_id)
            assert len(found) == 1, (path, found)
            denied[path] = found[0]
        assert {entry["action"] for entry in denied.values()} == {
            "admin.put_model_allowlist",
            "admin.list_users",
            "admin.put_plan",
            "admin.list_audit_entries",
        }
        for entry in denied.values():
            assert entry["outcome"] == "denied", entry
            assert entry["actor_id"] == prober.id
            assert entry["owner_id"] == prober.id
            assert entry["client"] == "192.0.2.44"
            assert entry["details"] == {"status": 403}
        assert denied[f"/api/admin/users/{victim.id}/plan"]["target"] == f"user:{victim.id}"

        # The caller sees their refusals; the user they aimed at is not shown them.
        mine = http.get("/api/audit", params={"limit": 100}, headers=prober.headers).json()
        assert len([entry for entry in mine["items"] if entry["outcome"] == "denied"]) == 4
        theirs = http.get("/api/audit", params={"limit": 100}, headers=victim.headers).json()
        assert all(entry["outcome"] != "denied" for entry in theirs["items"])

        # Without credentials there is nobody to name: a 401 leaves no entry.
        response, request_id = call("PUT", "/api/admin/models", json=attempts[0][2])
        assert_problem(response, 401)
        assert stored(mongo, audited_api, request_id=request_id) == []


def test_retention_deletes_only_entries_older_than_the_configured_days(
    start_api: StartApi,
) -> None:
    # Without Redis the API runs the housekeeping rounds itself.
    api = start_api({"REDIS_URL": "", "AUDIT_RETENTION_DAYS": "30", "AUDIT_PURGE_SECONDS": "0.3"})
    now = datetime.now(UTC)
    ages = {"old-1": 45, "old-2": 31, "recent": 29, "today": 0}
    with MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo:
        entries = mongo[api.env["DB_NAME"]]["audit_log"]
        entries.insert_many(
            [
                {
                    "id": name,
                    "action": "auth.login",
                    "actor_id": None,
                    "target": None,
                    "owner_id": None,
                    "client": None,
                    "request_id": None,
                    "outcome": "success",
                    "details": {},
                    "created_at": now - timedelta(days=days),
                }
                for name, days in ages.items()
            ]
        )

        def remaining() -> set[str]:
            return {entry["id"] for entry in entries.find({}, {"id": 1})}

        assert poll_until(remaining, lambda ids: "old-1" not in ids and "old-2" not in ids, 20) == {
            "recent",
            "today",
        }


def test_an_entry_the_database_refuses_is_counted_and_the_request_still_succeeds(
    start_api: StartApi,
) -> None:
    api = start_api()
    with (
        MongoClient[dict[str, Any]](api.env["MONGO_URL"], tz_aware=True) as mongo,
        api.client() as http,
    ):
        # A real refusal from the database: a second entry with the same request id.
        mongo[api.env["DB_NAME"]]["audit_log"].create_index("request_id", unique=True)
        account = sign_up(http)
        same_id = {"X-Request-ID": f"audit-{uuid.uuid4().hex}"}
        credentials = {"email": account.email, "password": PASSWORD}
        first = http.post("/api/auth/login", json=credentials, headers=same_id)
        assert first.status_code == 200, first.text
        before = value(scrape(http), "botsmith_audit_records_total", result="failed")
        second = http.post("/api/auth/login", json=credentials, headers=same_id)
        assert second.status_code == 200, second.text
        after = value(scrape(http), "botsmith_audit_records_total", result="failed")
        assert after == before + 1
        assert len(stored(mongo, api, request_id=same_id["X-Request-ID"])) == 1


@pytest.fixture
async def resources(services: Services, db_name: str) -> AsyncIterator[Resources]:
    settings = Settings(
        jwt_secret=TEST_JWT_SECRET, mongo_url=services.mongo_url, db_name=db_name, redis_url=None
    )
    opened = open_resources(settings)
    yield opened
    await opened.db.client.drop_database(db_name)
    await close_resources(opened)


@pytest.mark.anyio
async def test_a_detail_named_like_a_credential_is_dropped(resources: Resources) -> None:
    await record_audit(
        resources,
        "test.action",
        actor_id="someone",
        target="user:someone",
        client="198.51.100.1",
        request_id="req-1",
        details={"password": "hunter2", "api_key": "bsk_x", "refresh_token": "r", "prefix": "bsk_"},
    )
    entry = await resources.db["audit_log"].find_one({"request_id": "req-1"}, {"_id": 0})
    assert entry is not None
    assert entry["details"] == {"prefix": "bsk_"}
    assert entry["owner_id"] == "someone"  # a user target is that user's


@pytest.mark.anyio
async def test_a_purge_round_deletes_a_bounded_number_of_batches(resources: Resources) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    await resources.db["audit_log"].insert_many(
        [{"id": f"old-{n}", "created_at": old} for n in range(5)]
        + [{"id": "new", "created_at": datetime.now(UTC)}]
    )
    entries = AuditRepository(resources.db)
    assert await purge_expired(entries, retention_days=7, batch=2, max_batches=2) == 4
    assert await purge_expired(entries, retention_days=7, batch=2, max_batches=2) == 1
    assert await purge_expired(entries, retention_days=7, batch=2, max_batches=2) == 0
    left = await resources.db["audit_log"].find({}, {"_id": 0, "id": 1}).to_list()
    assert left == [{"id": "new"}]
