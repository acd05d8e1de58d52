"""MongoDB out of reach: requests that need it get 503 problem+json with Retry-After (within
MONGO_SERVER_SELECTION_TIMEOUT_MS), not a 500 with a traceback each; the first failure of an
outage is logged, every refusal counted. Nothing to recover: the driver finds the server again."""

import logging
import time
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import ConnectionFailure

from app.core.errors import problem_response
from app.core.metrics import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
WARNING_INTERVAL_SECONDS = 60.0


class _Outage:
    last_logged = -float("inf")

    @classmethod
    def record(cls, error: Exception) -> None:
        DATABASE_UNAVAILABLE.inc()
        now = time.monotonic()
        if now - cls.last_logged >= WARNING_INTERVAL_SECONDS:
            cls.last_logged = now
            logger.warning("database unavailable, answering 503 meanwhile: %s", error)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    _Outage.record(exc)
    return problem_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The database cannot be reached; try again shortly",
        instance=request.url.path,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_database_outage_handler(app: FastAPI) -> None:
    """ConnectionFailure covers server selection timeouts, network errors and pool timeouts."""
    app.add_exception_handler(ConnectionFailure, _database_unavailable)
