"""The embeddable widget: its script (a short-cached path and an immutable versioned one) and a
hosted full-page chat for sites that link to it or frame it."""

import html
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse

from app.chatbots.access import public_chatbot
from app.container import ContainerDep
from app.core.errors import NotFoundError, problem_responses
from app.widget.assets import widget_script

router = APIRouter(tags=["widget"])
JAVASCRIPT = "text/javascript; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
HTML_PAGE: dict[int | str, dict[str, object]] = {200: {"content": {"text/html": {}}}}


@router.get("/widget.js", response_class=Response, responses={200: {"content": {JAVASCRIPT: {}}}})
async def latest_widget() -> Response:
    """The current widget; cached for minutes, so pages pick up a new release soon."""
    script = widget_script()
    return Response(
        script.body,
        media_type=JAVASCRIPT,
        headers={"Cache-Control": SHORT, "X-Widget-Version": script.version},
    )


@router.get(
    "/widget/{version}/widget.js",
    response_class=Response,
    responses={200: {"content": {JAVASCRIPT: {}}}, **problem_responses(404)},
)
async def versioned_widget(version: Annotated[str, Path(max_length=64)]) -> Response:
    """One release of the widget, cached for a year: pin it together with its integrity hash."""
    script = widget_script()
    if version != script.version:
        raise NotFoundError(f"No widget version {version}; the current one is {script.version}")
    return Response(script.body, media_type=JAVASCRIPT, headers={"Cache-Control": IMMUTABLE})


def _page(title: str, body: str, policy: str) -> HTMLResponse:
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>html, body {{ margin: 0; height: 100%; font: 16px/1.5 system-ui, sans-serif; }}
main {{ max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }}</style>
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "Cache-Control": "no-cache",
        },
    )


def _policy(frame_ancestors: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"connect-src 'self'; img-src 'self' https: data:; frame-ancestors {frame_ancestors}; "
        "base-uri 'none'; form-action 'self'"
    )


def _script_tag(chatbot_id: str, mode: str = "") -> str:
    script = widget_script()
    bot_id = html.escape(chatbot_id, quote=True)
    extra = f' data-mode="{mode}"' if mode else ""
    return (
        f'<script src="{script.path}" integrity="{script.integrity}" '
        f'data-chatbot-id="{bot_id}"{extra} async></script>'
    )


@router.get("/widget/demo", response_class=HTMLResponse, responses=HTML_PAGE)
async def widget_demo(
    chatbot_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> HTMLResponse:
    """A page that embeds the widget for a public bot (`?chatbot_id=`), to try it locally."""
    if chatbot_id is None:
        body = """<main><h1>BotSmith widget demo</h1>
<p>Give the id of a public chatbot to see its widget on this page.</p>
<form method="get"><label>Chatbot id <input name="chatbot_id" required></label>
<button>Show the widget</button></form></main>"""
        return _page("BotSmith widget demo", body, _policy("'none'"))
    body = f"""<main><h1>BotSmith widget demo</h1>
<p>The launcher is in the corner. This page embeds:</p>
<pre>{html.escape(_script_tag(chatbot_id))}</pre></main>
{_script_tag(chatbot_id)}"""
    return _page("BotSmith widget demo", body, _policy("'none'"))


@router.get(
    "/chat/{chatbot_id}",
    response_class=HTMLResponse,
    responses={**HTML_PAGE, **problem_responses(404)},
)
async def hosted_chat(
    chatbot_id: Annotated[str, Path(max_length=64)], container: ContainerDep
) -> HTMLResponse:
    """A public bot's chat as a page of its own; only the bot's allowed origins may frame it."""
    chatbot = await public_chatbot(container.resources, chatbot_id, None)
    ancestors = " ".join(chatbot["allowed_origins"]) or "'none'"
    return _page(chatbot["name"], _script_tag(chatbot["id"], "page"), _policy(ancestors))
