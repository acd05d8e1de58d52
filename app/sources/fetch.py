"""Fetching web pages for URL sources without server-side request forgery.

Every hop (the first URL and each redirect) is resolved first, and refused when any address it
resolves to is not public (private, loopback, link-local, multicast, reserved, cloud metadata),
unless its host or address is on INGEST_URL_ALLOWLIST. Each page is bounded in time and size.
(A DNS answer that changes between the check and the connection is not caught.)
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from app.core.config import Settings

MAX_REDIRECTS = 5
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeUrlError(Exception):
    """The URL may not be fetched; the message says why."""


class FetchError(Exception):
    """The page could not be fetched; the message says why."""


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

    def allows(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return host.lower() in self.hosts or any(address in n for n in self.networks)


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
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
        return "not a public address"
    return None


async def check_url(url: str, allowlist: Allowlist) -> None:
    """Raises UnsafeUrlError unless every address the URL's host resolves to may be fetched."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError(f"{url}: only http and https URLs with a host can be fetched")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError as error:
            raise UnsafeUrlError(f"{url}: the host {host} does not resolve ({error})") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        reason = _forbidden(address)
        if reason and not allowlist.allows(host, address):
            raise UnsafeUrlError(f"{url}: {host} resolves to {address}, {reason}; refused")


@dataclass(frozen=True)
class Page:
    url: str
    content_type: str
    body: bytes


class Fetcher:
    """GETs pages for URL sources: each hop checked, each page bounded in time and size."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        allowlist: Allowlist,
        page_seconds: float,
        max_bytes: int,
        user_agent: str,
    ) -> None:
        self._client = client
        self._allowlist = allowlist
        self._page_seconds = page_seconds
        self._max_bytes = max_bytes
        self._headers = {"User-Agent": user_agent}

    @classmethod
    def configured(cls, client: httpx.AsyncClient, settings: Settings) -> "Fetcher":
        """The fetcher with the INGEST_* settings."""
        return cls(
            client,
            Allowlist.parse(settings.ingest_url_allowlist),
            settings.ingest_fetch_timeout_seconds,
            settings.ingest_fetch_max_bytes,
            settings.ingest_user_agent,
        )

    async def check(self, url: str) -> None:
        await check_url(url, self._allowlist)

    async def get(self, url: str) -> Page:
        """Follows redirects itself, so that every hop is checked before it is contacted."""
        for _ in range(MAX_REDIRECTS + 1):
            await self.check(url)
            try:
                async with asyncio.timeout(self._page_seconds):
                    async with self._client.stream(
                        "GET", url, headers=self._headers, timeout=self._page_seconds
                    ) as response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise FetchError(f"{url} answered {response.status_code}")
                        body = bytearray()
                        async for part in response.aiter_bytes():
                            body += part
                            if len(body) > self._max_bytes:
                                raise FetchError(f"{url} is larger than {self._max_bytes} bytes")
                        kind = response.headers.get("content-type", "").split(";")[0].strip()
                        return Page(str(response.url), kind, bytes(body))
            except TimeoutError:
                raise FetchError(f"{url} took longer than {self._page_seconds:g} s") from None
            except httpx.HTTPError as error:
                raise FetchError(f"{url} could not be fetched: {error}") from None
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")
