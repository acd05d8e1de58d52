"""CORS for the widget's public routes: a public bot's allowed origins (checked by the PublicBot
dependency before these run) may call them from the page that embeds the widget."""

from typing import Annotated

from fastapi import Header, Response

Origin = Annotated[str | None, Header()]
ALLOWED_HEADERS = "Content-Type, Accept, X-Request-ID"
PREFLIGHT_MAX_AGE_SECONDS = 600


def allow_origin(response: Response, origin: str | None) -> None:
    """Lets the (already accepted) calling page read this response."""
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


def answer_preflight(response: Response, origin: str | None, methods: str) -> None:
    """The answer to an OPTIONS preflight for a route taking `methods` (e.g. "POST, OPTIONS")."""
    allow_origin(response, origin)
    response.headers["Access-Control-Allow-Methods"] = methods
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
