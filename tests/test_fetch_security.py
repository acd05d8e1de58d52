"""The URL fetcher against DNS rebinding and leaks: each hop is resolved once and connected to
the address that was checked (HTTP and HTTPS, redirects included); refusals do not say what a
name resolves to; URLs carrying a password are refused; a broken sitemap fails its source."""

import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app.sources.fetch import Allowlist, Fetcher, FetchError, IPAddress, UnsafeUrlError

from tests.conftest import Services
from tests.support.api import assert_problem, create_chatbot, sign_up, wait_ready
from tests.support.loopback import LoopbackServer, QuietHandler
from tests.support.processes import ApiServer
from tests.support.site import Site
from tests.support.tls import issue_certificates

# The stand-in for a public address: allowed by address, as a public one is by default.
CHECKED = "127.0.0.2"
# Where a rebinding name points after the check: loopback, refused.
INTERNAL = "127.0.0.1"


class ScriptedResolver:
    """DNS whose answers the test writes: each name gives its answers in turn, the last one
    from then on. It records every name it is asked about."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = {name: list(script) for name, script in answers.items()}
        self.questions: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.questions.append(host)
        script = self._answers.get(host)
        if not script:
            raise OSError(f"{host}: no such name")
        answer = script.pop(0) if len(script) > 1 else script[0]
        return [ipaddress.ip_address(address) for address in answer]


class RecordingServer(LoopbackServer):
    """Serves one text per path (and redirects), recording each request's path and Host."""

    def __init__(
        self,
        address: str,
        port: int = 0,
        pages: dict[str, str] | None = None,
        redirects: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        server = self
        served, moved = pages or {}, redirects or {}

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                if self.path in moved:
                    self.send_response(302)
                    self.send_header("Location", moved[self.path].format(port=server.port))
                    self.end_headers()
                elif self.path in served:
                    self.send_body(200, "text/plain", served[self.path].encode())
                else:
                    self.send_body(404, "text/plain", b"not here")

        super().__init__(Handler, address, port, tls)


@pytest.fixture
def internal() -> Iterator[RecordingServer]:
    """A service on loopback that no fetch may reach."""
    with RecordingServer(INTERNAL, pages={"/": "internal", "/secret": "internal secret"}) as s:
        yield s


def fetcher(resolver: ScriptedResolver) -> Fetcher:
    return Fetcher(Allowlist.parse((CHECKED,)), 5.0, 100_000, "BotSmithTest", resolver)


@pytest.mark.anyio
async def test_a_name_that_changes_its_answer_after_the_check_is_fetched_from_the_checked_address(
    internal: RecordingServer,
) -> None:
    port = internal.port  # the same port on both addresses: only the address tells them apart
    resolver = ScriptedResolver({"rebind.test": [[CHECKED], [INTERNAL]]})
    with RecordingServer(CHECKED, port, pages={"/": "public page"}) as public:
        async with fetcher(resolver).session() as session:
            page = await session.get(f"http://rebind.test:{port}/")
            assert page.body == b"public page"
            assert public.requests == [("/", f"rebind.test:{port}")], "the Host keeps the name"
            assert resolver.questions == ["rebind.test"], "resolved once, not again to connect"

            # The next page: the name now points inside, and nothing is contacted.
            with pytest.raises(UnsafeUrlError, match="resolves to a loopback address") as refused:
                await session.get(f"http://rebind.test:{port}/secret")
    assert INTERNAL not in str(refused.value)
    assert internal.requests == []
    assert len(public.requests) == 1


@pytest.mark.anyio
async def test_a_redirect_hop_is_resolved_again_and_refused_when_it_points_inside(
    internal: RecordingServer,
) -> None:
    port = internal.port
    resolver = ScriptedResolver({"docs.test": [[CHECKED], [INTERNAL]]})
    redirects = {"/moved": "http://docs.test:{port}/secret"}
    with RecordingServer(CHECKED, port, redirects=redirects) as public:
        async with fetcher(resolver).session() as session:
            with pytest.raises(UnsafeUrlError, match="loopback") as refused:
                await session.get(f"http://docs.test:{port}/moved")
    assert public.requests == [("/moved", f"docs.test:{port}")]
    assert resolver.questions == ["docs.test", "docs.test"], "each hop is resolved and checked"
    assert internal.requests == [], "the redirect target was never contacted"
    assert INTERNAL not in str(refused.value)


@pytest.mark.anyio
async def test_a_redirect_to_a_url_with_a_password_is_refused_without_repeating_it() -> None:
    resolver = ScriptedResolver({"docs.test": [[CHECKED]]})
    redirects = {"/login": "http://admin:hunter2@docs.test:{port}/admin"}
    with RecordingServer(CHECKED, redirects=redirects, pages={"/admin": "admin"}) as public:
        async with fetcher(resolver).session() as session:
            with pytest.raises(UnsafeUrlError, match="user name or password") as refused:
                await session.get(f"http://docs.test:{public.port}/login")
    assert "hunter2" not in str(refused.value)
    assert [path for path, _ in public.requests] == ["/login"]


@pytest.mark.anyio
async def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, internal: RecordingServer
) -> None:
    certificates = issue_certificates(tmp_path, "docs.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    server_names: list[str | None] = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificates.cert_file, certificates.key_file)
    tls.sni_callback = lambda _socket, name, _context: server_names.append(name)
    port = internal.port
    resolver = ScriptedResolver({"docs.test": [[CHECKED]], "other.test": [[CHECKED]]})
    with RecordingServer(CHECKED, port, pages={"/": "over TLS"}, tls=tls) as public:
        async with fetcher(resolver).session() as session:
            page = await session.get(f"https://docs.test:{port}/")
            assert page.body == b"over TLS"
            assert server_names == ["docs.test"], "SNI is the host name, not the address"
            assert public.requests == [("/", f"docs.test:{port}")]

            # Same address, a name the certificate does not hold: verification is by name.
            with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
                await session.get(f"https://other.test:{port}/")
    assert len(public.requests) == 1
    assert internal.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("::1", "a loopback address"),
        ("100.64.0.7", "a non-public address"),
    ],
)
async def test_a_refusal_names_the_kind_of_address_but_not_the_address(
    address: str, kind: str
) -> None:
    resolver = ScriptedResolver({"intranet.test": [["93.184.215.14", address]]})
    with pytest.raises(UnsafeUrlError) as refused:
        await fetcher(resolver).check("https://intranet.test/wiki")
    assert (
        str(refused.value)
        == f"https://intranet.test/wiki: intranet.test resolves to {kind}; refused"
    )
    assert address not in str(refused.value)


@pytest.fixture(scope="module")
def in_process(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The API, ingesting in-process (no Redis), allowed to fetch test websites on 127.0.0.1."""
    env = {
        "MONGO_URL": services.mongo_url,
        "REDIS_URL": "",
        "DB_NAME": f"test_{uuid.uuid4().hex[:12]}",
        "INGEST_URL_ALLOWLIST": "127.0.0.1",
    }
    with ApiServer(tmp_path_factory.mktemp("api"), env) as server:
        server.wait_ready()
        with server.client() as client:
            yield client


def add_url(client: httpx.Client, headers: dict[str, str], bot: str, **body: Any) -> httpx.Response:
    return client.post(f"/api/chatbots/{bot}/sources/url", json=body, headers=headers)


@pytest.mark.parametrize("mode", ["page", "crawl"])
def test_a_url_with_a_password_is_refused_and_neither_stored_nor_echoed(
    in_process: httpx.Client, mode: str
) -> None:
    client = in_process
    owner = sign_up(client)
    bot = create_chatbot(client, owner)["id"]
    secret = "hunter2-" + uuid.uuid4().hex
    with Site({"/": "<html><body><p>Members only.</p></body></html>"}) as site:
        url = f"http://editor:{secret}@127.0.0.1:{site.port}/"
        refused = add_url(client, owner.headers, bot, url=url, mode=mode)
        body = assert_problem(refused, 422)
        assert "user name or password" in body["errors"][0]["message"]
        assert body["errors"][0]["field"] == "url"
        assert secret not in refused.text
        listed = client.get(f"/api/chatbots/{bot}/sources", headers=owner.headers)
        assert listed.json() == []
        assert site.hits == []


def test_a_malformed_sitemap_fails_its_source_with_the_reason(in_process: httpx.Client) -> None:
    client = in_process
    owner = sign_up(client)
    bot = create_chatbot(client, owner)["id"]
    broken = "<?xml version='1.0'?><urlset><url><loc>http://127.0.0.1:{port}/a</loc></urlset>"
    with Site({"/sitemap.xml": broken, "/a": "<html><p>A page.</p></html>"}) as site:
        created = add_url(
            client, owner.headers, bot, url=site.base + "/sitemap.xml", mode="sitemap"
        )
        assert created.status_code == 202, created.text
        failed = wait_ready(client, owner, bot, created.json()["id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"{site.base}/sitemap.xml is not a readable XML sitemap")
    assert "mismatched tag" in failed["error"]
    assert site.hits == ["/sitemap.xml"]
