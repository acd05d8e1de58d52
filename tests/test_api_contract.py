"""The OpenAPI document is true: schemathesis generates requests for every operation from the
served /openapi.json, one at a time and in sequences that follow its links, against the API
started as users start it, and every response must be what the document says it is (status,
media type, headers, body, and each Server-Sent Event of a streamed chat)."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from app.api import API_ROUTERS, ROOT_ROUTERS
from fastapi.routing import APIRoute, APIWebSocketRoute
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis import Case, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.routing import compile_path

from tests.conftest import StartApi
from tests.support.api import assert_problem, bearer, create_api_key, create_chatbot, sign_up
from tests.support.processes import ApiServer

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Generated cases per operation and mode: enough to reach each documented status, few enough
# for two cores.
EXAMPLES_PER_OPERATION = 12
SCENARIOS = 80
STEPS_PER_SCENARIO = 8
# The limits are the subject of test_limits.py; here a 429 would only hide the rest.
UNLIMITED = {
    f"RATE_LIMIT_{kind}PER_{unit}": "1000000"
    for kind in ("", "LOGIN_", "PUBLIC_")
    for unit in ("MINUTE", "HOUR")
}


@dataclass(frozen=True)
class Owner:
    """A signed-up owner with a public bot and an API key for it."""

    headers: dict[str, str]
    chatbot_id: str
    api_key: str


@pytest.fixture
def server(start_api: StartApi) -> ApiServer:
    server = start_api(UNLIMITED)
    server.wait_ready()
    return server


@pytest.fixture
def owner(server: ApiServer) -> Owner:
    with server.client() as client:
        account = sign_up(client)
        bot = create_chatbot(client, account, visibility="public")
        key = create_api_key(client, account, bot["id"])
    return Owner(account.headers, bot["id"], key["key"])


@pytest.fixture
def schema(server: ApiServer) -> OpenApiSchema:
    loaded = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    loaded.config.update(base_url=server.base_url)
    return loaded


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def _settings(**overrides: Any) -> hypothesis.settings:
    """No shrinking and no example database: a failure is reported as found, and runs alone."""
    defaults: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "derandomize": True,
        "phases": [Phase.explicit, Phase.generate],
        "suppress_health_check": list(HealthCheck),
    }
    return hypothesis.settings(**(defaults | overrides))


def test_every_operation_answers_as_its_documentation_says(
    schema: OpenApiSchema, owner: Owner, session: requests.Session
) -> None:
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"unusable operation: {result.err()}")
            continue
        operation = result.ok()
        # Requests name the owner's bot, so they get past the lookup to the route's own answers;
        # all but the one that deletes it, which would leave the rest nothing but 404s.
        on_the_bot = "{chatbot_id}" in operation.path
        if on_the_bot and operation.label != "DELETE /api/chatbots/{chatbot_id}":
            known = {"chatbot_id": owner.chatbot_id}
        else:
            known = None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=known)

            @given(case=strategy)
            @_settings(max_examples=EXAMPLES_PER_OPERATION)
            def answers_as_documented(case: Case[Any]) -> None:
                case.call_and_validate(session=session, headers=owner.headers, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, or only the fixed bot id).
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as failure:
                failures.append(f"{operation.label} ({mode.value}):\n{failure}")
    assert not failures, "\n\n".join(failures)


def test_sequences_of_calls_answer_as_the_documentation_says(
    schema: OpenApiSchema, owner: Owner, session: requests.Session
) -> None:
    scenarios = 0
    calls: list[str] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, object]:
            calls.append(case.operation.label)
            return {"session": session, "headers": owner.headers}

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: object,
        ) -> None:
            case.validate_response(response, checks=CHECKS, headers=owner.headers)

        def teardown(self) -> None:
            nonlocal scenarios
            scenarios += 1

    settings = _settings(
        max_examples=SCENARIOS,
        stateful_step_count=STEPS_PER_SCENARIO,
        phases=[Phase.generate],
        derandomize=False,
    )
    for _ in range(5):
        try:
            Workflow.run(settings=settings)
        except FlakyStrategyDefinition:
            # The server's state changed what a replayed step could draw (a bundle a 201 filled
            # is empty after a 409): start again, as the schemathesis runner does.
            if scenarios < SCENARIOS:
                continue
        break
    assert scenarios >= SCENARIOS
    # The sequences went on from what they created (a bot) to what needs it.
    assert "POST /api/chatbots" in calls
    assert any("{chatbot_id}" in label for label in calls)


@pytest.mark.parametrize(
    "path",
    ["/api/chatbots/{chatbot_id}/chat", "/api/public/chatbots/{chatbot_id}/chat"],
)
def test_a_streamed_answer_sends_the_events_the_documentation_describes(
    schema: OpenApiSchema, owner: Owner, session: requests.Session, path: str
) -> None:
    case = schema[path]["POST"].Case(
        path_parameters={"chatbot_id": owner.chatbot_id},
        headers=bearer(owner.api_key),
        body={"message": "What are your opening hours?", "session_id": "visitor", "stream": True},
        media_type="application/json",
    )
    response = case.call_and_validate(session=session, checks=CHECKS)
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/event-stream")
    events = [line for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "event: start"
    assert events[-1] == "event: end"


def test_a_method_a_path_does_not_take_is_refused_naming_the_methods_it_does(
    server: ApiServer, owner: Owner
) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
        response = client.put(f"/api/chatbots/{owner.chatbot_id}", headers=owner.headers)
        assert_problem(response, 405)
        assert response.headers["allow"] == "DELETE, GET, PATCH"
        for template, operations in document["paths"].items():
            documented = {method.upper() for method in operations}
            method = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in documented)
            refused = client.request(method, re.sub(r"\{[^}]+\}", "some-id", template))
            assert refused.status_code == 405, template
            # The widget's CORS preflights answer OPTIONS without being operations of their own.
            allowed = set(refused.headers["allow"].split(", ")) - {"OPTIONS"}
            assert allowed == documented, template


def test_every_error_is_documented_as_problem_details_with_the_statuses_middleware_adds(
    server: ApiServer,
) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    problem = {"$ref": "#/components/schemas/Problem"}
    assert set(document["components"]["schemas"]["Problem"]["properties"]) >= {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "errors",
    }
    probes = {"/livez", "/readyz", "/metrics"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400 and path != "/readyz":
                    assert response["content"] == {"application/problem+json": {"schema": problem}}
            if operation.get("security"):
                assert {"401", "403"} <= responses.keys(), label
            if path not in probes:
                assert responses["429"]["headers"]["Retry-After"]["required"], label
            if "{" in path:
                assert "404" in responses, label


def test_no_two_routers_serve_the_same_request_so_their_matching_order_is_free() -> None:
    """app.api matches the busiest routers first; that is only safe while no request could be
    matched by routes of two routers (the one included first would win)."""
    included = [("/api", router) for router in API_ROUTERS] + [("", r) for r in ROOT_ROUTERS]
    routes = [
        (index, method, prefix + route.path)
        for index, (prefix, router) in enumerate(included)
        for route in router.routes
        if isinstance(route, APIRoute | APIWebSocketRoute)
        for method in getattr(route, "methods", None) or {"WEBSOCKET"}
    ]
    assert len(routes) > 90
    for index, method, template in routes:
        request_path = re.sub(r"\{[^}]+\}", "some-id", template)
        for other, other_method, other_template in routes:
            if other != index and other_method == method:
                pattern = compile_path(other_template)[0]
                assert not pattern.match(request_path), (method, template, other_template)
