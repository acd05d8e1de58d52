"""Every router of the service (the API under /api, the probes and metrics at the root), what
the middleware must know of their paths, and the OpenAPI document's account of what the
middleware and the framework answer besides the routes."""

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI

from app.admin.router import router as admin_router
from app.analytics.router import router as analytics_router
from app.apikeys.router import router as apikeys_router
from app.audit.router import audit_router
from app.chat.public import router as public_chat_router
from app.chat.router import router as chat_router
from app.chat.sse import event_schemas
from app.chatbots.router import router as chatbots_router
from app.core.errors import SCHEMA_REF, problem_document, problem_schemas
from app.core.metrics import metrics_router
from app.core.middleware import PathRules
from app.evaluation.router import router as evaluation_router
from app.governance.router import router as governance_router
from app.handoff.router import public_router as public_handoff_router
from app.handoff.router import router as handoff_router
from app.health.router import api_router as health_api_router
from app.health.router import probe_router
from app.leads.router import public_router as public_leads_router
from app.leads.router import router as leads_router
from app.quotas.router import router as quotas_router
from app.realtime.router import router as realtime_router
from app.retrieval.router import router as retrieval_router
from app.sources.router import defaults_router as source_defaults_router
from app.sources.router import router as sources_router
from app.users.dependencies import admin_user, current_user
from app.users.router import auth_router, users_router
from app.webhooks.router import router as webhooks_router
from app.widget.router import router as widget_router

API_ROUTERS: tuple[APIRouter, ...] = (
    health_api_router,
    auth_router,
    users_router,
    admin_router,
    audit_router(current_user, admin_user),
    chatbots_router,
    apikeys_router,
    sources_router,
    source_defaults_router,
    retrieval_router,
    chat_router,
    public_chat_router,
    leads_router,
    public_leads_router,
    realtime_router,
    analytics_router,
    quotas_router,
    evaluation_router,
    handoff_router,
    public_handoff_router,
    webhooks_router,
    governance_router,
)
ROOT_ROUTERS: tuple[APIRouter, ...] = (probe_router, metrics_router, widget_router)
# FastAPI tries every route of each router in turn until one matches: /api/chatbots/{id} behind
# five routers cost 50 µs of matching, a widget visitor's chat 150 µs. The busiest are matched
# first; no two routers' paths overlap (tests/test_api_contract.py), so the order changes no
# answer. The OpenAPI document keeps API_ROUTERS' order for its tags.
BUSIEST_FIRST: tuple[APIRouter, ...] = (
    health_api_router,
    chatbots_router,
    public_chat_router,
    chat_router,
    retrieval_router,
    public_leads_router,
    public_handoff_router,
    realtime_router,
)

PATH_RULES = PathRules(
    unlimited=frozenset({"/livez", "/readyz", "/metrics"}),
    never_queued=frozenset({"/livez", "/readyz", "/metrics", "/api/health"}),
    auth=frozenset({"/api/auth/login", "/api/auth/register", "/api/auth/refresh"}),
    public_prefix="/api/public/",
)


def include_routers(app: FastAPI, *, metrics: bool = True) -> None:
    """metrics=False leaves /metrics out (served on METRICS_PORT instead, so 404 here)."""
    # Each router is included directly: every level of nesting costs a match per request.
    rest = [router for router in API_ROUTERS if router not in BUSIEST_FIRST]
    for router in (*BUSIEST_FIRST, *rest):
        app.include_router(router, prefix="/api")
    for router in ROOT_ROUTERS:
        if metrics or router is not metrics_router:
            app.include_router(router)


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
# FastAPI's own error schemas, replaced by Problem.
_FRAMEWORK_ERRORS = ("HTTPValidationError", "ValidationError")
_ERROR_REFS = {SCHEMA_REF.format(model=name) for name in ("Problem", *_FRAMEWORK_ERRORS)}


def _implied_errors(path: str, operation: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The errors an operation can answer whatever its route declares, derived from what it
    takes (body, parameters), whether it needs credentials, and the middleware on its path."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    paged = any(p["in"] == "query" and p["name"] == "cursor" for p in parameters)
    malformed = [
        reason
        for reason, applies in (("a body that cannot be parsed", has_body), ("a bad cursor", paged))
        if applies
    ]
    if malformed:
        yield 400, problem_document(" or ".join(malformed).capitalize())
    if operation.get("security"):
        yield 401, problem_document("Credentials missing, invalid, expired or revoked")
        yield 403, problem_document("These credentials may not do this")
    if any(p["in"] == "path" for p in parameters):
        yield 404, problem_document("No such resource, or not one of the caller's")
    if has_body:
        yield 413, problem_document("The body is over the size limit")
    if has_body or parameters:
        yield 422, problem_document("Invalid request; `errors` names each invalid field")
    if path not in PATH_RULES.unlimited:
        yield 429, problem_document("Over a rate limit", RETRY_AFTER)
    if path not in PATH_RULES.unlimited:
        reason = "The database cannot be reached"
        if path not in PATH_RULES.never_queued:
            reason = "The server is at its concurrency limit, or the database cannot be reached"
        yield 503, problem_document(reason, RETRY_AFTER)
    if path not in PATH_RULES.unlimited:
        yield 504, problem_document("No response started within REQUEST_TIMEOUT")


def _as_problem(response: dict[str, Any]) -> None:
    """An error documented without a body, or with an error model under the route's own media
    type (JSON, or HTML on the widget's pages), is problem+json, as the error handlers answer."""
    content = response.get("content")
    if content is None or any(
        media.get("schema", {}).get("$ref") in _ERROR_REFS for media in content.values()
    ):
        response["content"] = problem_document("")["content"]


def with_errors_documented(openapi: dict[str, Any]) -> dict[str, Any]:
    """The document, its error responses made true: problem+json bodies, and the statuses the
    middleware, the framework and the dependencies answer on every operation they cover."""
    for path, operations in openapi["paths"].items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= HTTPStatus.BAD_REQUEST:
                    _as_problem(response)
            for code, document in _implied_errors(path, operation):
                declared = responses.setdefault(str(code), document)
                for name, header in document.get("headers", {}).items():
                    declared.setdefault("headers", {}).setdefault(name, header)
            operation["responses"] = dict(sorted(responses.items()))
    used = {
        tag
        for operations in openapi["paths"].values()
        for op in operations.values()
        for tag in op.get("tags", [])
    }
    tags = dict.fromkeys(tag for router in (*API_ROUTERS, *ROOT_ROUTERS) for tag in router.tags)
    openapi["tags"] = [{"name": tag} for tag in tags if tag in used]
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(problem_schemas())
    for name, schema in event_schemas().items():
        schemas.setdefault(name, schema)
    for name in _FRAMEWORK_ERRORS:  # the first refers to the second
        if f'"{SCHEMA_REF.format(model=name)}"' not in json.dumps(openapi["paths"] | schemas):
            schemas.pop(name, None)
    return openapi


def document_api(app: FastAPI) -> None:
    """Serves the OpenAPI document with its errors documented (see with_errors_documented)."""
    generate = app.openapi
    documented: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal documented
        if documented is None:
            documented = with_errors_documented(generate())
        return documented

    app.openapi = openapi  # type: ignore[method-assign]
