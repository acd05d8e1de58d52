"""Registration, login, sessions and the caller's own account, through the running API."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.api import (
    PASSWORD,
    assert_problem,
    bearer,
    login,
    sign_up,
    unique_email,
)
from tests.support.processes import ApiServer


def test_registration_normalises_the_email_and_hides_the_password(client: httpx.Client) -> None:
    email = unique_email()
    response = client.post(
        "/api/auth/register",
        json={"email": f"  {email.upper()} ", "password": PASSWORD, "name": "Ada"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert body["role"] == "user"
    assert body["status"] == "active"
    assert "password" not in str(body)
    assert login(client, email)["token_type"] == "bearer"


def test_concurrent_registrations_of_one_email_give_one_201_and_the_rest_409(
    api: ApiServer,
) -> None:
    email = unique_email()

    def register() -> int:
        with api.client() as http:
            payload = {"email": email, "password": PASSWORD}
            return http.post("/api/auth/register", json=payload).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: register(), range(8)))
    assert statuses == [201] + [409] * 7


def test_login_failures_do_not_reveal_whether_the_email_exists(client: httpx.Client) -> None:
    account = sign_up(client)
    wrong_password = client.post(
        "/api/auth/login", json={"email": account.email, "password": "not the password"}
    )
    unknown_email = client.post(
        "/api/auth/login", json={"email": unique_email(), "password": "not the password"}
    )
    first = assert_problem(wrong_password, 401)
    second = assert_problem(unknown_email, 401)
    assert first["detail"] == second["detail"] == "Invalid email or password"


def test_repeated_login_failures_are_throttled_even_for_the_right_password(
    client: httpx.Client,
) -> None:
    account = sign_up(client)
    for _ in range(5):
        failed = client.post("/api/auth/login", json={"email": account.email, "password": "nope"})
        assert failed.status_code == 401
    blocked = client.post("/api/auth/login", json={"email": account.email, "password": PASSWORD})
    assert_problem(blocked, 429)
    assert 0 < int(blocked.headers["Retry-After"]) <= 900


def test_refresh_rotates_and_an_old_refresh_token_is_rejected(client: httpx.Client) -> None:
    account = sign_up(client)
    rotated = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert rotated.status_code == 200
    new_pair = rotated.json()
    assert new_pair["refresh_token"] != account.refresh_token
    assert client.get("/api/users/me", headers=bearer(new_pair["access_token"])).status_code == 200

    replay = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(replay, 401)
    # The replay looked like theft: the whole session is ended, the new token included.
    after_replay = client.post(
        "/api/auth/refresh", json={"refresh_token": new_pair["refresh_token"]}
    )
    assert_problem(after_replay, 401)


def test_logout_revokes_the_refresh_token(client: httpx.Client) -> None:
    account = sign_up(client)
    logout = client.post("/api/auth/logout", json={"refresh_token": account.refresh_token})
    assert logout.status_code == 204
    refresh = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(refresh, 401)


def test_a_password_change_voids_earlier_tokens_and_returns_working_ones(
    client: httpx.Client,
) -> None:
    account = sign_up(client)
    wrong = client.post(
        "/api/users/me/password",
        json={"current_password": "not it", "new_password": "a new long password"},
        headers=account.headers,
    )
    assert_problem(wrong, 400)
    changed = client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a new long password"},
        headers=account.headers,
    )
    assert changed.status_code == 200
    assert_problem(client.get("/api/users/me", headers=account.headers), 401)
    refresh = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(refresh, 401)
    new_headers = bearer(changed.json()["access_token"])
    assert client.get("/api/users/me", headers=new_headers).json()["email"] == account.email
    assert login(client, account.email, "a new long password")["access_token"]


def test_profile_update_changes_only_what_is_sent_and_emails_stay_unique(
    client: httpx.Client,
) -> None:
    first, second = sign_up(client), sign_up(client)
    renamed = client.patch("/api/users/me", json={"name": "Grace"}, headers=first.headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Grace"
    assert renamed.json()["email"] == first.email
    taken = client.patch(
        "/api/users/me",
        json={"email": second.email, "current_password": PASSWORD},
        headers=first.headers,
    )
    assert_problem(taken, 409)


def test_operator_injection_and_unknown_fields_are_422_naming_the_field(
    client: httpx.Client,
) -> None:
    injected = client.post("/api/auth/login", json={"email": {"$gt": ""}, "password": "x"})
    body = assert_problem(injected, 422)
    assert [error["field"] for error in body["errors"]] == ["email"]

    regex = client.post(
        "/api/auth/register", json={"email": {"$regex": ".*"}, "password": PASSWORD}
    )
    assert_problem(regex, 422)

    extra = client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "role": "admin"},
    )
    body = assert_problem(extra, 422)
    assert body["errors"][0]["field"] == "role"

    oversized = client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "name": "x" * 101},
    )
    assert assert_problem(oversized, 422)["errors"][0]["field"] == "name"


def test_a_malformed_or_forged_access_token_is_401(client: httpx.Client) -> None:
    assert_problem(client.get("/api/users/me", headers=bearer("not-a-jwt")), 401)
    forged = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4IiwidmVyIjowLCJ0eXAiOiJhY2Nlc3MiLCJpYXQi"
        "OjEsImV4cCI6OTk5OTk5OTk5OX0.invalid-signature"
    )
    response = client.get("/api/users/me", headers=bearer(forged))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
