"""The outgoing HTTP client (model providers, URL sources): one pool per process."""

import httpx

from app.core.config import Settings


def http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        timeout=httpx.Timeout(settings.ingest_fetch_timeout_seconds),
        headers={"User-Agent": settings.ingest_user_agent},
        follow_redirects=False,  # URL sources check every hop themselves
    )
