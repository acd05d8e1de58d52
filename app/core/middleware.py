"""Plain ASGI middleware: security headers, request context and metrics, rate limits,
concurrency limit, timeout.

Order, outermost first: SecurityHeaders → RequestContext (request id, X-Process-Time, metrics,
slow-request log) → RateLimit → ConcurrencyLimit → Timeout → the application. Each costs a few
microseconds per request and passes WebSockets through where it does not apply.
"""

import asyncio
import hashlib
import ipaddress
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from opentelemetry import trace
from pydantic import IPvAnyNetwork
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import problem_body
from app.core.logging import request_id_var
from app.core.metrics import (
    CONCURRENCY_REJECTIONS,
    CONCURRENCY_WAITING,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_TIMEOUTS,
    labelled,
)
from app.core.ratelimit import RateLimiter, VerifiedKeys
from app.core.routes import RouteTemplates
from app.core.security import API_KEY_MARKER, decode_access_token

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PathRules:
    """What the middleware knows of the application's paths; the application (app.api) says."""

    unlimited: frozenset[str]  # probes and scrapes: never limited, queued, refused or timed out
    never_queued: frozenset[str]  # never queued or refused for concurrency (still rate limited)
    auth: frozenset[str]  # the stricter `auth` rate limit
    public_prefix: str  # the `public` rate limit (widget endpoints)

    def rate_class(self, path: str) -> str:
        if path in self.auth:
            return "auth"
        if path.startswith(self.public_prefix):
            return "public"
        return "default"


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_REQUESTS = labelled(HTTP_REQUESTS)
_DURATION = labelled(HTTP_REQUEST_DURATION)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    path: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = problem_body(status, detail, instance=path)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestIds:
    """32 hex digits: a random prefix drawn once per process (again in a forked child) and a
    counter. Unique like uuid4 without reading the kernel's random source on every request."""

    def __init__(self) -> None:
        self._draw()
        os.register_at_fork(after_in_child=self._draw)

    def _draw(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF:012x}"


class RequestContextMiddleware:
    """Request id (kept from X-Request-ID when sane), X-Process-Time, request metrics."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Callable[[], RouteTemplates]):
        self.app = app
        self._slow = settings.slow_request_seconds
        self._routes = routes
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else self._ids.next()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        trace.get_current_span().set_attribute("botsmith.request_id", request_id)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return

        started = time.perf_counter()
        status = 500

        async def send_with_context(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - started
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-process-time", f"{elapsed:.6f}".encode()))
                if getattr(scope.get("app"), "draining", False):  # the server is stopping
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_context)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = self._routes().resolve(scope["path"])
            labels = (scope["method"], route, _STATUS_CLASSES.get(status // 100, "5xx"))
            _REQUESTS(*labels).inc()
            _DURATION(*labels).observe(elapsed)
            if elapsed > self._slow:
                logger.warning(
                    "slow request: %s %s %d in %.2f s", scope["method"], route, status, elapsed
                )
            request_id_var.reset(token)


class ClientIdentity:
    """Who is calling, for rate limits: a verified API key, else a user (a valid access token),
    else the client address (from X-Forwarded-For only when the peer is a configured trusted
    proxy). Login, registration and the widget's routes always count the address."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._trusted = settings.trusted_proxies

    def __call__(self, scope: Scope, route_class: str, verified_keys: VerifiedKeys) -> str:
        if route_class != "default":
            return "ip:" + self.client_address(scope)
        api_key = _header(scope, b"x-api-key")
        authorization = _header(scope, b"authorization") or ""
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() == "bearer" and credential.startswith(API_KEY_MARKER):
            api_key = credential
        if api_key:
            digest = hashlib.sha256(api_key.encode()).hexdigest()
            if digest in verified_keys:
                return "key:" + digest[:32]
            return "ip:" + self.client_address(scope)
        if scheme.lower() == "bearer" and credential:
            claims = decode_access_token(self._settings, credential)
            if claims is not None:
                return "user:" + claims.user_id
        return "ip:" + self.client_address(scope)

    def client_address(self, scope: Scope) -> str:
        peer = scope["client"][0] if scope.get("client") else "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        forwarded = _header(scope, b"x-forwarded-for")
        if not forwarded:
            return peer
        # Walk from the nearest hop back; the first address that is not a proxy is the client.
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            if not self._is_trusted(hop):
                return hop
        return peer

    def _is_trusted(self, address: str) -> bool:
        return in_networks(address, self._trusted)


def in_networks(address: str, networks: Sequence[IPvAnyNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


_CSP = b"content-security-policy"
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_REFERRER = (b"referrer-policy", b"no-referrer")
_NO_FRAMING = (b"x-frame-options", b"DENY")
# JSON, scripts, problem bodies: nothing to run or load, and no page may frame them.
_API_POLICY = (_CSP, b"default-src 'none'; frame-ancestors 'none'")
# Swagger UI and ReDoc: their bundles come from jsDelivr and they start with an inline script.
_DOCS_POLICY = (
    _CSP,
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
    b"worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeadersMiddleware:
    """X-Content-Type-Options, Referrer-Policy, X-Frame-Options and a Content-Security-Policy on
    every response, HSTS on those that went over TLS (here, or to a trusted proxy that says so in
    X-Forwarded-Proto). A response with a policy of its own (the widget's pages: they may be
    framed by a bot's allowed origins) keeps it and gets no X-Frame-Options."""

    def __init__(self, app: ASGIApp, settings: Settings, docs_paths: frozenset[str]) -> None:
        self.app = app
        self._trusted = settings.trusted_proxies
        self._docs_paths = docs_paths
        self._api = [_NOSNIFF, _NO_REFERRER, _NO_FRAMING, _API_POLICY]
        self._docs = [_NOSNIFF, _NO_REFERRER, _NO_FRAMING, _DOCS_POLICY]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self._docs if scope["path"] in self._docs_paths else self._api
        if self._over_tls(scope):
            added = [*added, _HSTS]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if any(name == _CSP for name, _ in headers):
                    present = {name for name, _ in headers}
                    extra = [h for h in added if h[0] not in present and h != _NO_FRAMING]
                else:
                    extra = added
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _over_tls(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        if not self._trusted or not scope.get("client"):
            return False
        if not in_networks(scope["client"][0], self._trusted):
            return False
        # The first proxy's view is the one the browser had; a spoofed value earlier in the
        # chain can at worst add HSTS to a plain-http response, which browsers ignore.
        forwarded = _header(scope, b"x-forwarded-proto") or ""
        return forwarded.split(",", 1)[0].strip().lower() == "https"


class RateLimitMiddleware:
    """Refuses a client over its limits with 429; every response carries RateLimit headers."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        paths: PathRules,
        limiter: Callable[[], RateLimiter],
        verified_keys: Callable[[], VerifiedKeys],
    ) -> None:
        self.app = app
        self._paths = paths
        self._limiter = limiter
        self._verified_keys = verified_keys
        self._identity = ClientIdentity(settings)
        self._enabled = settings.rate_limit_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self._enabled
            or scope["type"] not in ("http", "websocket")
            or scope["path"] in self._paths.unlimited
        ):
            await self.app(scope, receive, send)
            return
        kind = self._paths.rate_class(scope["path"])
        identity = f"{kind}:{self._identity(scope, kind, self._verified_keys())}"
        decision = await self._limiter().hit(identity, kind)
        headers = decision.headers()
        if not decision.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "rate limited"})
                return
            detail = f"Rate limit exceeded; retry in {decision.retry_after} s"
            origin = _header(scope, b"origin")
            if origin and kind == "public":
                # The widget on a customer's page must be able to read why it was refused.
                headers = [
                    *headers,
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-expose-headers", b"Retry-After"),
                    (b"vary", b"Origin"),
                ]
            await send_problem(send, HTTPStatus.TOO_MANY_REQUESTS, detail, scope["path"], headers)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ConcurrencyLimitMiddleware:
    """At most ASYNC_CONCURRENCY_LIMIT requests at once per worker; a bounded number wait a
    short while for a slot, the rest get 503 with Retry-After. WebSockets are not counted."""

    def __init__(self, app: ASGIApp, settings: Settings, paths: PathRules) -> None:
        self.app = app
        self._never_queued = paths.never_queued
        self._limit = settings.async_concurrency_limit
        self._queue_size = settings.concurrency_queue_size
        self._queue_timeout = settings.concurrency_queue_timeout_seconds
        self._active = 0
        self._waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._never_queued:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        if not await self._acquire(self._slots):
            CONCURRENCY_REJECTIONS.inc()
            retry = str(max(1, round(self._queue_timeout))).encode()
            await send_problem(
                send,
                HTTPStatus.SERVICE_UNAVAILABLE,
                "The server is at its concurrency limit; retry shortly",
                scope["path"],
                [(b"retry-after", retry)],
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _acquire(self, slots: asyncio.Semaphore) -> bool:
        if not slots.locked():
            await slots.acquire()
            return True
        if self._waiting >= self._queue_size:
            return False
        self._waiting += 1
        CONCURRENCY_WAITING.inc()
        try:
            async with asyncio.timeout(self._queue_timeout):
                await slots.acquire()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
            CONCURRENCY_WAITING.dec()


class TimeoutMiddleware:
    """Cancels a handler that has not started its response within REQUEST_TIMEOUT (504); once a
    streaming response has started, the limit applies to each gap between chunks instead."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        paths: PathRules,
        routes: Callable[[], RouteTemplates],
    ) -> None:
        self.app = app
        self._unlimited = paths.unlimited
        self._timeout = settings.request_timeout
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._unlimited:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = False
        finished = False
        deadline: asyncio.Timeout | None = None

        async def send_extending(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)
            if deadline is not None:
                # Background tasks after the body are not the client's wait: no limit then.
                deadline.reschedule(None if finished else loop.time() + self._timeout)

        try:
            async with asyncio.timeout(self._timeout) as deadline:
                await self.app(scope, receive, send_extending)
        except TimeoutError:
            HTTP_TIMEOUTS.labels(self._routes().resolve(scope["path"])).inc()
            if started:
                logger.warning("stream idle for %.0f s, closed: %s", self._timeout, scope["path"])
                return
            detail = f"The request took longer than {self._timeout:g} s"
            await send_problem(send, HTTPStatus.GATEWAY_TIMEOUT, detail, scope["path"])
