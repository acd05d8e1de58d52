"""Fetching web pages for URL sources without server-side request forgery.

Every hop (the first URL and each redirect) is resolved once, and refused when any address it
resolves to is not public (private, loopback, link-local, multicast, reserved, cloud metadata),
unless its host or address is on INGEST_URL_ALLOWLIST. The connection then goes to one of the
addresses that were checked, never to a fresh DNS answer, so a name whose answer changes after
the check (DNS rebinding) cannot steer it elsewhere; the Host header, the TLS server name and the
certificate check keep the host's name. Each page is bounded in time and size.

A page fetched before can be asked for conditionally (If-None-Match, If-Modified-Since): a 304
comes back as a page marked `not_modified`, without a body.
"""

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpcore
import httpx

from app.core.config import Settings

MAX_REDIRECTS = 5
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
# Checked addresses by (host as the connection pool names it, port).
Pins = dict[tuple[str, int], tuple[IPAddress, ...]]
# httpcore's type of a socket option (setsockopt's arguments).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class UnsafeUrlError(Exception):
    """The URL may not be fetched; the message says why."""


class FetchError(Exception):
    """The page could not be fetched; the message says why (`status`: the HTTP status the
    server answered, when it answered)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> "Allowlist":
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host.lower() in self.hosts or any(address in n for n in self.networks)


def _forbidden(address: IPAddress) -> str | None:
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return "a non-public address"
    return None


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives for the host; OSError when it gives none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Hop:
    """A URL's host and port, with the checked addresses a connection to it may use."""

    host: str  # IDNA-encoded, as the connection pool names it
    port: int
    addresses: tuple[IPAddress, ...]


async def check_url(url: str, allowlist: Allowlist, resolve: Resolver = resolve_host) -> Hop:
    """Resolves the URL's host once; raises UnsafeUrlError unless every address may be fetched.
    Refusals name the kind of address, never the address a name resolves to."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        raise UnsafeUrlError(f"{url}: not a valid URL") from None
    if parts.userinfo:
        # The URL is left out: it holds the secret.
        raise UnsafeUrlError("URLs with a user name or password are not fetched")
    if parts.scheme not in ("http", "https") or not parts.host:
        raise UnsafeUrlError(f"{url}: only http and https URLs with a host can be fetched")
    host, pool_host = parts.host, parts.raw_host.decode("ascii")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(pool_host, port)
        except OSError as error:
            raise UnsafeUrlError(f"{url}: the host {host} does not resolve ({error})") from None
        if not addresses:
            raise UnsafeUrlError(f"{url}: the host {host} does not resolve")
    for address in addresses:
        reason = _forbidden(address)
        if reason and not allowlist.allows(host, address):
            verb = "is" if literal is not None else "resolves to"
            raise UnsafeUrlError(f"{url}: {host} {verb} {reason}; refused")
    return Hop(pool_host, port, tuple(addresses))


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses checked for a host, and nowhere else: no DNS lookup here."""

    def __init__(self, pins: Pins) -> None:
        self._pins = pins
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get((host, port))
        if not addresses:
            raise UnsafeUrlError(f"{host}:{port} was not checked before connecting; refused")
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None, "there was at least one address"
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections go to checked addresses only. The pool
    is keyed by host name, so a connection is reused only for the name it was verified for."""

    def __init__(self, pins: Pins, context: ssl.SSLContext) -> None:
        super().__init__(verify=context)
        # httpx takes no network backend of its own, so its pool is replaced by one that has it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(pins),
        )


@dataclass(frozen=True)
class Validators:
    """What the server said identifies the version of a page it sent (ETag, Last-Modified)."""

    url: str  # the URL that answered them: they are sent back to it only
    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        sent = {"If-None-Match": self.etag, "If-Modified-Since": self.last_modified}
        return {name: value for name, value in sent.items() if value}


@dataclass(frozen=True)
class Page:
    url: str
    content_type: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a 304: the page is as it was when `validators` were given


class Fetcher:
    """Checks URLs for URL sources, and opens sessions that fetch them."""

    def __init__(
        self,
        allowlist: Allowlist,
        page_seconds: float,
        max_bytes: int,
        user_agent: str,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.allowlist = allowlist
        self.page_seconds = page_seconds
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.resolve = resolve

    @classmethod
    def configured(cls, settings: Settings) -> "Fetcher":
        """The fetcher with the INGEST_* settings."""
        return cls(
            Allowlist.parse(settings.ingest_url_allowlist),
            settings.ingest_fetch_timeout_seconds,
            settings.ingest_fetch_max_bytes,
            settings.ingest_user_agent,
        )

    async def check(self, url: str) -> None:
        await check_url(url, self.allowlist, self.resolve)

    @asynccontextmanager
    async def session(self) -> AsyncIterator["FetchSession"]:
        """A session whose connections (kept alive between its pages) close when it ends."""
        pins: Pins = {}
        # Honours SSL_CERT_FILE and SSL_CERT_DIR, as httpx does.
        transport = _PinnedTransport(pins, httpx.create_ssl_context())
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
            yield FetchSession(self, client, pins)


class FetchSession:
    """GETs pages: each hop checked and pinned, each page bounded in time and size."""

    def __init__(self, fetcher: Fetcher, client: httpx.AsyncClient, pins: Pins) -> None:
        self._fetcher = fetcher
        self._client = client
        self._pins = pins
        self._headers = {"User-Agent": fetcher.user_agent}

    async def get(self, url: str, validators: Validators | None = None) -> Page:
        """Follows redirects itself, so that every hop is checked and pinned before it is
        contacted. With `validators` the request is conditional at the URL that gave them."""
        fetcher = self._fetcher
        seconds, max_bytes = fetcher.page_seconds, fetcher.max_bytes
        for _ in range(MAX_REDIRECTS + 1):
            hop = await check_url(url, fetcher.allowlist, fetcher.resolve)
            self._pins[hop.host, hop.port] = hop.addresses
            asked = validators.headers() if validators else {}
            conditional = (
                bool(asked) and validators is not None and validators.url == str(httpx.URL(url))
            )
            headers = {**self._headers, **asked} if conditional else self._headers
            try:
                async with asyncio.timeout(seconds):
                    async with self._client.stream(
                        "GET", url, headers=headers, timeout=seconds
                    ) as response:
                        etag = response.headers.get("etag")
                        modified = response.headers.get("last-modified")
                        if response.status_code == 304 and conditional:
                            assert validators is not None
                            return Page(
                                str(response.url),
                                "",
                                b"",
                                etag or validators.etag,
                                modified or validators.last_modified,
                                not_modified=True,
                            )
                        if response.has_redirect_location:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            status = response.status_code
                            raise FetchError(f"{url} answered {status}", status)
                        body = bytearray()
                        async for part in response.aiter_bytes():
                            body += part
                            if len(body) > max_bytes:
                                raise FetchError(f"{url} is larger than {max_bytes} bytes")
                        kind = response.headers.get("content-type", "").split(";")[0].strip()
                        return Page(str(response.url), kind, bytes(body), etag, modified)
            except TimeoutError:
                raise FetchError(f"{url} took longer than {seconds:g} s") from None
            except httpx.HTTPError as error:
                raise FetchError(f"{url} could not be fetched: {error}") from None
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")
