"""Security headers on every response of the running API: no sniffing, no referrer, no framing
and nothing to run for API responses, a policy the documentation pages can work with, the
widget's own pages still framable by a bot's allowed origins, and HSTS only over TLS."""

import httpx
import pytest

from tests.conftest import StartApi
from tests.support.api import assert_problem, create_chatbot, sign_up
from tests.support.processes import ApiServer

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
ORIGIN = "https://shop.example"


def assert_not_framable_and_inert(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == API_POLICY
    # Each once: a second, different value would leave the browser to pick one.
    for name in ("x-content-type-options", "referrer-policy", "content-security-policy"):
        assert len(response.headers.get_list(name)) == 1, name


def test_api_answers_and_errors_carry_the_headers(api: ApiServer) -> None:
    with api.client() as client:
        answers = [client.get(path) for path in ("/api/health", "/openapi.json", "/widget.js")]
        unauthorized = client.get("/api/users/me")
        missing = client.get("/nowhere")
    assert_problem(unauthorized, 401)
    assert_problem(missing, 404)
    for response in [*answers, unauthorized, missing]:
        assert_not_framable_and_inert(response)


def test_a_refusal_by_the_rate_limiter_carries_them_too(start_api: StartApi) -> None:
    api = start_api({"RATE_LIMIT_PER_MINUTE": "1"}, private_redis=True)
    with api.client() as client:
        client.get("/api/health")
        refused = client.get("/api/health")
    assert_problem(refused, 429)
    assert_not_framable_and_inert(refused)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_documentation_pages_get_a_policy_that_lets_them_load(
    api: ApiServer, path: str
) -> None:
    page = httpx.get(f"{api.base_url}{path}")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_a_bots_hosted_chat_stays_framable_by_its_allowed_origins(api: ApiServer) -> None:
    with api.client() as client:
        owner = sign_up(client)
        bot = create_chatbot(client, owner, visibility="public", allowed_origins=[ORIGIN])
        page = client.get(f"/chat/{bot['id']}")
        script = client.get("/widget.js")
    assert page.status_code == 200
    policy = page.headers.get_list("content-security-policy")
    assert len(policy) == 1
    assert f"frame-ancestors {ORIGIN};" in policy[0]
    assert "x-frame-options" not in page.headers
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]
    assert page.headers.get_list("referrer-policy") == ["strict-origin-when-cross-origin"]
    # The script other sites load: served as JavaScript (nosniff would refuse anything else),
    # and with nothing that keeps a cross-origin page from running it.
    assert script.headers["content-type"].startswith("text/javascript")
    assert "cross-origin-resource-policy" not in script.headers


def test_no_hsts_over_plain_http_even_when_an_untrusted_peer_claims_https(
    api: ApiServer,
) -> None:
    with api.client() as client:
        assert "strict-transport-security" not in client.get("/api/health").headers
        claimed = client.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in claimed.headers


def test_hsts_when_a_trusted_proxy_says_the_request_came_over_tls(start_api: StartApi) -> None:
    api = start_api({"TRUSTED_PROXIES": "127.0.0.0/8"})
    with api.client() as client:
        over_tls = client.get("/api/health", headers={"X-Forwarded-Proto": "https"})
        chained = client.get("/api/health", headers={"X-Forwarded-Proto": "https, http"})
        plain = client.get("/api/health", headers={"X-Forwarded-Proto": "http"})
        unsaid = client.get("/api/health")
    assert over_tls.headers["strict-transport-security"] == HSTS
    assert chained.headers["strict-transport-security"] == HSTS
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in unsaid.headers
    assert_not_framable_and_inert(over_tls)
