"""The request-forgery guard of `app.sources.fetch`, offered to webhook deliveries: endpoint
URLs are checked as URL sources are (INGEST_URL_ALLOWLIST opens private hosts), plain http is
refused unless the host is on that list, and connections go to the addresses checked."""

import httpx

from app.core.config import Settings
from app.sources.fetch import (
    Allowlist,
    Pins,
    Resolver,
    UnsafeUrlError,
    _PinnedTransport,
    check_url,
    resolve_host,
)
from app.webhooks.delivery import UnsafeEndpointError


class PinnedEgress:
    """An `app.webhooks.delivery.Egress`: one per process; its client's connection pool is
    keyed by host name, and a host's connections go to the addresses last checked for it."""

    def __init__(self, allowlist: Allowlist, resolve: Resolver = resolve_host) -> None:
        self._allowlist = allowlist
        self._resolve = resolve
        self._pins: Pins = {}

    @classmethod
    def configured(cls, settings: Settings) -> "PinnedEgress":
        return cls(Allowlist.parse(settings.ingest_url_allowlist))

    async def check(self, url: str) -> None:
        try:
            hop = await check_url(url, self._allowlist, self._resolve)
        except UnsafeUrlError as error:
            raise UnsafeEndpointError(str(error)) from None
        parts = httpx.URL(url)
        if parts.scheme != "https" and not all(
            self._allowlist.allows(parts.host, address) for address in hop.addresses
        ):
            raise UnsafeEndpointError(
                f"{url}: only https URLs are accepted (http only for hosts on the allowlist)"
            )
        self._pins[hop.host, hop.port] = hop.addresses

    def client(self) -> httpx.AsyncClient:
        # Honours SSL_CERT_FILE and SSL_CERT_DIR, as httpx does.
        transport = _PinnedTransport(self._pins, httpx.create_ssl_context())
        return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
