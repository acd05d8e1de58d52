"""Administration: the first admin from the CLI, user management, suspension, counts."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.api import (
    Account,
    assert_problem,
    create_admin,
    create_chatbot,
    login,
    sign_up,
    unique_email,
)
from tests.support.processes import ApiServer


@pytest.fixture(scope="module")
def admin(api: ApiServer) -> Account:
    email = unique_email("admin")
    result = create_admin(api.env, email)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"administrator {email} created"
    with api.client() as client:
        tokens = login(client, email)
        me = client.get(
            "/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    return Account(me.json()["id"], email, "", tokens["access_token"], tokens["refresh_token"])


def test_create_admin_refuses_an_existing_account_unless_told_to_promote_it(
    api: ApiServer, client: httpx.Client
) -> None:
    # Anyone may have registered the address first: their account is not promoted by default.
    account = sign_up(client)
    refused = create_admin(api.env, account.email)
    assert refused.returncode == 2
    assert "--promote-existing" in refused.stderr
    assert client.get("/api/users/me", headers=account.headers).json()["role"] == "user"


def test_promoting_an_account_ends_its_earlier_sessions(
    api: ApiServer, client: httpx.Client
) -> None:
    account = sign_up(client)
    result = create_admin(api.env, account.email, promote=True)
    assert result.returncode == 0, result.stderr
    assert "earlier sessions ended" in result.stdout
    assert_problem(client.get("/api/users/me", headers=account.headers), 401)
    stale = client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(stale, 401)
    fresh = login(client, account.email)
    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert client.get("/api/users/me", headers=headers).json()["role"] == "admin"


def test_create_admin_with_a_bad_email_is_one_line_and_exit_2(api: ApiServer) -> None:
    result = create_admin(api.env, "not-an-email")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "EMAIL" in result.stderr


def test_create_admin_without_a_password_for_a_new_account_says_so(api: ApiServer) -> None:
    email = unique_email("nobody")
    result = create_admin(api.env, email, password="")
    assert result.returncode == 2
    assert result.stderr.strip() == f"botsmith: {email} has no account yet: give a password"


def test_a_regular_user_cannot_reach_admin_endpoints(client: httpx.Client) -> None:
    user = sign_up(client)
    assert_problem(client.get("/api/admin/users", headers=user.headers), 403)
    assert_problem(client.get("/api/admin/counts", headers=user.headers), 403)


def test_suspension_cuts_off_live_tokens_at_once_and_reactivation_restores_login(
    client: httpx.Client, admin: Account
) -> None:
    user = sign_up(client)
    assert client.get("/api/users/me", headers=user.headers).status_code == 200
    suspended = client.patch(
        f"/api/admin/users/{user.id}", json={"status": "suspended"}, headers=admin.headers
    )
    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"

    assert_problem(client.get("/api/users/me", headers=user.headers), 401)
    refresh = client.post("/api/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_problem(refresh, 401)
    denied = client.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert assert_problem(denied, 401)["detail"] == "This account is suspended"

    client.patch(f"/api/admin/users/{user.id}", json={"status": "active"}, headers=admin.headers)
    assert login(client, user.email)["access_token"]


def test_admins_cannot_change_their_own_role_or_status(
    client: httpx.Client, admin: Account
) -> None:
    response = client.patch(
        f"/api/admin/users/{admin.id}", json={"role": "user"}, headers=admin.headers
    )
    assert_problem(response, 409)


def test_user_listing_filters_sorts_newest_first_and_pages_by_cursor(
    client: httpx.Client, admin: Account
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    created = [sign_up(client) for _ in range(5)]
    client.patch(
        f"/api/admin/users/{created[0].id}", json={"status": "suspended"}, headers=admin.headers
    )
    params = {"created_from": since.isoformat(), "status": "active", "role": "user", "limit": "2"}
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = client.get(
            "/api/admin/users",
            params={**params, **({"cursor": cursor} if cursor else {})},
            headers=admin.headers,
        ).json()
        seen += [user["email"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [account.email for account in reversed(created[1:])]
    assert [email for email in seen if email in expected] == expected
    assert created[0].email not in seen


def test_a_forged_cursor_is_a_400(client: httpx.Client, admin: Account) -> None:
    response = client.get(
        "/api/admin/users", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=admin.headers
    )
    assert_problem(response, 400)


def test_platform_counts_follow_new_users_and_chatbots(
    client: httpx.Client, admin: Account
) -> None:
    before = client.get("/api/admin/counts", headers=admin.headers).json()
    owner = sign_up(client)
    create_chatbot(client, owner)
    create_chatbot(client, owner)
    after = client.get("/api/admin/counts", headers=admin.headers).json()
    assert after["users"] == before["users"] + 1
    assert after["chatbots"] == before["chatbots"] + 2
    assert after["conversations"] == before["conversations"]
    assert after["messages"] == before["messages"]
