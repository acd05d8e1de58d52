"""Throttled password attempts: login per email and client address, account changes per account,
counted atomically across workers before the password is checked."""

import asyncio

import httpx
import pytest

from tests.conftest import StartApi
from tests.support.api import PASSWORD, assert_problem, bearer, login, sign_up, unique_email
from tests.support.processes import RedisServer

LIMIT = 5  # LOGIN_MAX_FAILURES's default, which the shared API runs with
THROTTLED = "Too many failed attempts"
NEW_PASSWORD = "a new long password"


def _from(client_address: str) -> dict[str, str]:
    return {"X-Forwarded-For": client_address}


def _login(
    client: httpx.Client, email: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post(
        "/api/auth/login", json={"email": email, "password": password}, headers=headers
    )


def assert_throttled(response: httpx.Response) -> None:
    assert assert_problem(response, 429)["title"] == THROTTLED
    assert 0 < int(response.headers["Retry-After"]) <= 900


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("env", "workers"),
    [({}, 2), ({"REDIS_URL": ""}, 1)],
    ids=["redis-two-workers", "in-process"],
)
async def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(
    start_api: StartApi, env: dict[str, str], workers: int
) -> None:
    api = start_api(
        {"LOGIN_MAX_FAILURES": str(LIMIT), **env},
        workers=workers,
        private_redis="REDIS_URL" not in env,
    )
    email = unique_email()
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        registered = await client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201
        guesses = [
            client.post("/api/auth/login", json={"email": email, "password": f"guess {n}"})
            for n in range(20)
        ]
        responses = await asyncio.gather(*guesses)
        right = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * LIMIT + [429] * (20 - LIMIT)
    for response in responses:
        if response.status_code == 429:
            assert_throttled(response)
    assert_throttled(right)


def test_behind_a_trusted_proxy_one_clients_failures_do_not_lock_out_another(
    start_api: StartApi,
) -> None:
    api = start_api({"TRUSTED_PROXIES": "127.0.0.1/32"})
    with api.client() as client:
        account = sign_up(client)
        for _ in range(LIMIT):
            assert_problem(_login(client, account.email, "nope", _from("203.0.113.7")), 401)
        assert_throttled(_login(client, account.email, PASSWORD, _from("203.0.113.7")))
        owner = _login(client, account.email, PASSWORD, _from("198.51.100.20"))
        assert owner.status_code == 200, owner.text


def test_without_trusted_proxies_x_forwarded_for_is_ignored(client: httpx.Client) -> None:
    account = sign_up(client)
    for attempt in range(LIMIT):
        forged = _from(f"203.0.113.{attempt + 1}")
        assert_problem(_login(client, account.email, "nope", forged), 401)
    assert_throttled(_login(client, account.email, PASSWORD, _from("198.51.100.20")))


def test_a_successful_login_clears_the_count(client: httpx.Client) -> None:
    account = sign_up(client)  # its login was one attempt, cleared by its success
    for _ in range(LIMIT - 1):
        assert_problem(_login(client, account.email, "nope"), 401)
    assert _login(client, account.email, PASSWORD).status_code == 200
    for _ in range(LIMIT):
        assert_problem(_login(client, account.email, "nope"), 401)
    assert_throttled(_login(client, account.email, PASSWORD))


def test_current_password_guesses_are_throttled_per_account(client: httpx.Client) -> None:
    account = sign_up(client)
    other_session = bearer(login(client, account.email)["access_token"])

    def change(headers: dict[str, str], current: str) -> httpx.Response:
        body = {"current_password": current, "new_password": NEW_PASSWORD}
        return client.post("/api/users/me/password", json=body, headers=headers)

    for _ in range(LIMIT):
        assert_problem(change(account.headers, "not it"), 400)
    assert_throttled(change(account.headers, PASSWORD))
    assert_throttled(change(other_session, PASSWORD))
    # The email change guesses the same password: it shares the account's count.
    body = {"email": unique_email(), "current_password": PASSWORD}
    assert_throttled(client.patch("/api/users/me", json=body, headers=account.headers))


def test_an_email_change_needs_the_current_password(client: httpx.Client) -> None:
    account = sign_up(client)
    new_email = unique_email()
    missing = client.patch("/api/users/me", json={"email": new_email}, headers=account.headers)
    assert [error["field"] for error in assert_problem(missing, 422)["errors"]] == [
        "current_password"
    ]
    for _ in range(LIMIT):
        wrong = client.patch(
            "/api/users/me",
            json={"email": new_email, "current_password": "not it"},
            headers=account.headers,
        )
        assert assert_problem(wrong, 403)["detail"] == "The current password is wrong"
    right = client.patch(
        "/api/users/me",
        json={"email": new_email, "current_password": PASSWORD},
        headers=account.headers,
    )
    assert_throttled(right)
    assert client.get("/api/users/me", headers=account.headers).json()["email"] == account.email


def test_an_email_change_ends_every_session(client: httpx.Client) -> None:
    account = sign_up(client)
    other = login(client, account.email)
    new_email = unique_email()
    changed = client.patch(
        "/api/users/me",
        json={"email": new_email, "name": "Ada", "current_password": PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_email
    for access_token, refresh_token in [
        (account.access_token, account.refresh_token),
        (other["access_token"], other["refresh_token"]),
    ]:
        assert_problem(client.get("/api/users/me", headers=bearer(access_token)), 401)
        refresh = client.post("/api/auth/refresh", json={"refresh_token": refresh_token})
        assert_problem(refresh, 401)
    assert_problem(_login(client, account.email, PASSWORD), 401)
    fresh = bearer(login(client, new_email)["access_token"])
    assert client.get("/api/users/me", headers=fresh).json()["name"] == "Ada"


def test_a_name_change_keeps_the_session(client: httpx.Client) -> None:
    account = sign_up(client)
    renamed = client.patch("/api/users/me", json={"name": "Grace"}, headers=account.headers)
    assert renamed.status_code == 200
    assert client.get("/api/users/me", headers=account.headers).json()["name"] == "Grace"
    refresh = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 200


def test_redis_down_lets_logins_through_uncounted(
    start_api: StartApi, private_redis: RedisServer
) -> None:
    api = start_api({"REDIS_URL": private_redis.url})
    with api.client() as client:
        account = sign_up(client)
        private_redis.stop()
        for _ in range(LIMIT + 2):
            assert_problem(_login(client, account.email, "nope"), 401)
        assert _login(client, account.email, PASSWORD).status_code == 200
    assert "throttle: redis unavailable, not counting" in api.output()
