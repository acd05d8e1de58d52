"""Plain ASGI middleware bounding request bodies: MAX_REQUEST_BYTES for every route, and the
upload limit (INGEST_MAX_FILE_BYTES plus the multipart framing) for the routes marked with
`UPLOAD_BODY`, which take whole documents. A declared Content-Length over the limit is refused
before the application runs; a chunked or streamed body is counted as it is read, and reading
stops at the first byte over (413 problem+json either way)."""

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import PROBLEM_JSON, problem_body
from app.core.routes import UNMATCHED, RouteTemplates

# Room for the multipart framing around an upload: boundaries, part headers, the file name.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# A route's `openapi_extra`: its body may be as large as an upload.
UPLOAD_BODY: dict[str, Any] = {"x-body-limit": "upload"}
logger = logging.getLogger(__name__)


class BodyTooLargeError(HTTPException):
    """Raised to the application when the body it reads passes the limit; its HTTP exception
    handler answers 413 problem+json like every other error."""

    def __init__(self, limit: int) -> None:
        super().__init__(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(limit))
        self.limit = limit


def too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes"


def upload_routes(openapi: Mapping[str, Any]) -> list[str]:
    """The route templates of an OpenAPI document with an operation marked `UPLOAD_BODY`."""
    marker, value = next(iter(UPLOAD_BODY.items()))
    return [
        path
        for path, operations in openapi.get("paths", {}).items()
        if any(
            isinstance(operation, dict) and operation.get(marker) == value
            for operation in operations.values()
        )
    ]


def _declared_body(scope: Scope) -> tuple[int | None, bool]:
    """The request's Content-Length (None when absent or malformed: the server refuses a
    malformed one itself) and whether its body comes chunked."""
    length, chunked = None, False
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif key == b"transfer-encoding":
            chunked = True
    return length, chunked


class BodyLimitMiddleware:
    """Refuses request bodies over MAX_REQUEST_BYTES, or over the upload limit on the routes
    marked `UPLOAD_BODY` (found once, in the OpenAPI document)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        openapi: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.app = app
        self._limit = settings.max_request_bytes
        self._upload_limit = max(
            settings.max_request_bytes, settings.ingest_max_file_bytes + MULTIPART_OVERHEAD_BYTES
        )
        self._openapi = openapi
        self._uploads: RouteTemplates | None = None

    def limit_for(self, path: str) -> int:
        if self._uploads is None:
            self._uploads = RouteTemplates(upload_routes(self._openapi()))
        return self._upload_limit if self._uploads.resolve(path) != UNMATCHED else self._limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _declared_body(scope)
        if not declared and not chunked:  # HTTP/1.1 framing: no body to bound
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit: int | None = None
        if declared:
            limit = self.limit_for(path)
            if declared > limit:
                await _refuse(send, limit, path)
                return

        received = 0
        started = False

        async def receive_bounded() -> Message:
            nonlocal received, limit
            message = await receive()
            if message["type"] == "http.request" and (body := message.get("body", b"")):
                received += len(body)
                if limit is None:
                    limit = self.limit_for(path)
                if received > limit:
                    if started:
                        # Too late for a 413: the rest of the body is not the handler's to read.
                        return {"type": "http.disconnect"}
                    raise BodyTooLargeError(limit)
            return message

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_bounded, send_tracking)
        except BodyTooLargeError as error:
            # Read outside the application's exception handlers (another middleware).
            if started:
                logger.warning("body over %d bytes after the response started", error.limit)
                return
            await _refuse(send, error.limit, path)


async def _refuse(send: Send, limit: int, path: str) -> None:
    body = problem_body(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large(limit), instance=path)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        # The unread rest of the body makes the connection unusable for another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
