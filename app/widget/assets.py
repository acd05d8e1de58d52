"""The widget script as served: its bytes, a content version for the immutable path, and its
Subresource Integrity hash (the README quotes it; a test keeps the two equal)."""

import base64
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class WidgetScript:
    body: bytes
    version: str  # the first hex digits of the content's SHA-256: a new script, a new path
    integrity: str  # sha384-…, for the integrity attribute of the script tag

    @property
    def path(self) -> str:
        return f"/widget/{self.version}/widget.js"


@cache
def widget_script() -> WidgetScript:
    body = files("app.widget").joinpath("static/widget.js").read_bytes()
    digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
    return WidgetScript(body, hashlib.sha256(body).hexdigest()[:12], f"sha384-{digest}")
