"""Errors as application/problem+json (RFC 9457), one shape for every error the API returns."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
SCHEMA_REF = "#/components/schemas/{model}"
logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="The field, dotted for nested ones (`retrieval.top_k`)")
    message: str


class Problem(BaseModel):
    """An error as RFC 9457 problem details; some errors add extension members (a refused
    quota: `quota`, `limit`, `resets_at`)."""

    type: str = Field(default="about:blank", description="`about:blank`: `title` names the error")
    title: str = Field(description="The error, in a few words; the same for every occurrence")
    status: int = Field(description="The HTTP status code, repeated")
    detail: str | None = Field(default=None, description="What went wrong this time")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[FieldError] | None = Field(
        default=None, description="One entry per invalid field (request validation)"
    )


class DomainError(Exception):
    """Base of the errors services raise; subclasses set the status and title. `extensions`
    are RFC 9457 extension members, added to the problem's body beside the standard ones."""

    status: int = HTTPStatus.BAD_REQUEST
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        extensions: Mapping[str, str | int | None] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers
        self.extensions = dict(extensions or {})


class NotFoundError(DomainError):
    status = HTTPStatus.NOT_FOUND
    title = "Not found"


class ConflictError(DomainError):
    status = HTTPStatus.CONFLICT
    title = "Conflict"


class UnprocessableError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Unprocessable content"


class LimitReachedError(ConflictError):
    """A per-owner or per-bot cap: the detail names the cap and its value."""

    title = "Limit reached"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json bodies for these statuses."""
    return {status: {"model": Problem} for status in statuses}


def problem_document(
    description: str, headers: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An OpenAPI response object: a problem+json body, with these documented headers."""
    document: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF.format(model="Problem")}}},
    }
    if headers:
        document["headers"] = dict(headers)
    return document


def problem_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas of problem+json bodies (Problem and what it refers to)."""
    _, definitions = models_json_schema([(Problem, "serialization")], ref_template=SCHEMA_REF)
    schemas: dict[str, Any] = definitions["$defs"]
    return schemas


def problem_body(status: int, detail: str | None = None, *, instance: str | None = None) -> bytes:
    """The problem+json body, for code below the framework (ASGI middleware)."""
    problem = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance
    )
    return problem.model_dump_json(exclude_none=True).encode()


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, str | int | None] | None = None,
) -> JSONResponse:
    problem = Problem(
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        {**(extensions or {}), **problem.model_dump(exclude_none=True)},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(location: tuple[int | str, ...]) -> str:
    # Drop the "body"/"query"/"path" prefix: clients know fields, not FastAPI's sources.
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts)


def allowed_methods(request: Request) -> str:
    """The methods of every route of the resource at the request's path; the router's own 405
    names only those of the first route it tried (GET of `/api/chatbots/{id}`, not PATCH and
    DELETE). The resource is the most specific template that matches: `/sources/file`, not
    `/sources/{source_id}`."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path.removeprefix(root) if root else path
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if route.path and pattern is not None and pattern.match(path):
            by_template.setdefault(route.path, set()).update(route.methods or ())
    if not by_template:
        return ""
    resource = min(by_template, key=lambda template: template.count("{"))
    return ", ".join(sorted(by_template[resource]))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    headers = exc.headers
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED and (allow := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_field_name(tuple(item["loc"])), message=item["msg"])
        for item in exc.errors()
    ]
    names = ", ".join(sorted({error.field for error in errors}))
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        f"Invalid request: {names}",
        instance=request.url.path,
        errors=errors,
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        exc.status,
        exc.detail,
        title=exc.title,
        instance=request.url.path,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(HTTPStatus.INTERNAL_SERVER_ERROR, instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(Exception, _unhandled)
