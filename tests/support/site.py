"""A small website on loopback for URL-source tests; it records every path it serves."""

from tests.support.loopback import LoopbackServer, QuietHandler


class Site(LoopbackServer):
    def __init__(self, pages: dict[str, str], redirects: dict[str, str] | None = None) -> None:
        self.pages = pages  # path -> HTML (or XML for .xml paths)
        self.redirects = redirects or {}
        self.hits: list[str] = []
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                if self.path in site.redirects:
                    self.send_response(302)
                    self.send_header("Location", site.redirects[self.path].format(port=site.port))
                    self.end_headers()
                    return
                body = site.pages.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                kind = (
                    "application/xml" if self.path.endswith(".xml") else "text/html; charset=utf-8"
                )
                self.send_body(200, kind, body.format(port=site.port).encode())

        super().__init__(Handler)
        self.base = f"http://127.0.0.1:{self.port}"
