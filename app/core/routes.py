"""Route templates for labels: `/api/chatbots/{chatbot_id}`, never the raw path."""

import re
from collections.abc import Iterable

from starlette.routing import compile_path

UNMATCHED = "unmatched"


class RouteTemplates:
    """Resolves a request path to the template of the route that serves it."""

    def __init__(self, templates: Iterable[str]) -> None:
        # Static templates first, so `/api/chatbots/search` would beat `/api/chatbots/{id}`.
        ordered = sorted(set(templates), key=lambda template: ("{" in template, template))
        self._exact = {template for template in ordered if "{" not in template}
        self._patterns: list[tuple[re.Pattern[str], str]] = [
            (compile_path(template)[0], template) for template in ordered if "{" in template
        ]

    def resolve(self, path: str) -> str:
        if path in self._exact:
            return path
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return UNMATCHED
