"""The outgoing HTTP client (model providers, embeddings): one pool per process. Callers set
their own timeouts and headers per request. URL sources have their own, address-pinned
connections (`app.sources.fetch`)."""

import httpx

DEFAULT_TIMEOUT_SECONDS = 30.0


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS),
        follow_redirects=False,  # nothing here is meant to be sent elsewhere
    )
