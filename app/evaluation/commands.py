"""`botsmith eval`: runs a file of test cases against a running API, waits for the run, prints
its summary and checks it against minimums; for CI. It speaks HTTP only (no database)."""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from app.evaluation.schemas import RunDetail, RunSummary
from app.evaluation.scoring import shortfalls, summarize

POLL_SECONDS = 1.0
_COUNTS = ("cases", "answerable", "unanswerable", "errors")


class EvalCommandError(Exception):
    """The evaluation could not be run or did not finish; the message says why."""


@dataclass(frozen=True)
class EvalOptions:
    file: Path
    url: str
    chatbot_id: str
    token: str
    minimums: Mapping[str, float] = field(default_factory=dict)  # summary metric -> minimum
    timeout: float = 600.0
    as_json: bool = False
    label: str | None = None


def read_cases(path: Path) -> list[Any]:
    """The cases of a JSON file: `{"cases": [...]}` or a bare list (the server validates them)."""
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise EvalCommandError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise EvalCommandError(f"{path} is not JSON: {error}") from None
    cases = document.get("cases") if isinstance(document, dict) else document
    if not isinstance(cases, list) or not cases:
        raise EvalCommandError(f'{path}: expected a non-empty list of cases, or {{"cases": [...]}}')
    return cases


def _problem(response: httpx.Response) -> str:
    """The server's problem+json in one line (or the start of whatever it answered)."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if not isinstance(problem, dict):
        return str(problem)[:200]
    text = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    errors = problem.get("errors") or []
    details = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors[:5])
    return f"{text} ({details})" if details else text


class _Api:
    def __init__(self, http: httpx.Client, chatbot_id: str) -> None:
        self._http = http
        self._runs = f"/api/chatbots/{chatbot_id}/eval/runs"

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise EvalCommandError(
                f"{method} {self._http.base_url}{path} failed: {error}"
            ) from None
        if response.status_code >= 400:
            raise EvalCommandError(
                f"{method} {path} answered {response.status_code}: {_problem(response)}"
            )
        body: dict[str, Any] = response.json()
        return body

    def start(self, cases: list[Any], label: str | None) -> dict[str, Any]:
        return self._call("POST", self._runs, json={"cases": cases, "label": label})

    def get(self, run_id: str, *, results: bool) -> dict[str, Any]:
        params = {"results": "true" if results else "false"}
        return self._call("GET", f"{self._runs}/{run_id}", params=params)


def _wait(api: _Api, run: dict[str, Any], timeout: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + timeout
    while run["status"] in ("queued", "running"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            progress = run["progress"]
            raise EvalCommandError(
                f"run {run['id']} did not finish within {timeout:g} s (status {run['status']}, "
                f"{progress['done']}/{progress['total']} cases done); it goes on in the "
                f"background{': ' + run['notice'] if run.get('notice') else ''}"
            )
        sleep(min(POLL_SECONDS, remaining))
        run = api.get(run["id"], results=False)
    if run["status"] == "failed":
        raise EvalCommandError(f"run {run['id']} failed: {run['error']}")


def _value(summary: RunSummary, metric: str) -> str:
    value = getattr(summary, metric)
    if value is None:
        return "-"
    return str(value) if metric in _COUNTS or isinstance(value, int) else f"{value:.3f}"


def summary_table(summary: RunSummary, minimums: Mapping[str, float]) -> str:
    """The summary as aligned rows: metric, value, and the minimum with its verdict."""
    under = shortfalls(summary, minimums)
    rows = []
    for metric in RunSummary.model_fields:
        if metric == "k":
            continue
        name = f"recall_at_k (k={summary.k})" if metric == "recall_at_k" else metric
        check = ""
        if metric in minimums:
            verdict = "UNDER" if metric in under else "ok"
            check = f">= {minimums[metric]:.3f}  {verdict}"
        rows.append((name, _value(summary, metric), check))
    name_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    return "\n".join(
        f"{name:<{name_width}}  {value:>{value_width}}  {check}".rstrip()
        for name, value, check in rows
    )


def run_eval(
    options: EvalOptions, out: TextIO, sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """Runs the file's cases and prints the summary; returns the metrics under their minimum.
    Raises EvalCommandError when the run cannot be started or does not finish."""
    cases = read_cases(options.file)
    headers = {"Authorization": f"Bearer {options.token}"}
    with httpx.Client(base_url=options.url.rstrip("/"), headers=headers, timeout=60) as http:
        api = _Api(http, options.chatbot_id)
        run = api.start(cases, options.label)
        _wait(api, run, options.timeout, sleep)
        detail = RunDetail.model_validate(api.get(run["id"], results=True))
    summary = summarize(detail.results or [], detail.settings.top_k)
    failures = list(shortfalls(summary, options.minimums).values())
    if options.as_json:
        document = {
            "run_id": detail.id,
            "summary": summary.model_dump(),
            "minimums": dict(options.minimums),
            "failures": failures,
        }
        print(json.dumps(document, indent=2), file=out)
    else:
        print(f"run {detail.id}: {summary.cases} cases", file=out)
        print(summary_table(summary, options.minimums), file=out)
    return failures
