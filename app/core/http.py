"""The outgoing HTTP client (model providers, embeddings, URL sources): one pool per process.
Callers set their own timeouts and headers per request."""

import httpx

DEFAULT_TIMEOUT_SECONDS = 30.0


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS),
        follow_redirects=False,  # URL sources check every hop themselves
    )
