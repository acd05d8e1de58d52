"""A small website on loopback for URL-source tests; it records every path it serves (and the
headers of each request), and can answer conditional requests or fail on command."""

from tests.support.loopback import LoopbackServer, QuietHandler


class Site(LoopbackServer):
    def __init__(self, pages: dict[str, str], redirects: dict[str, str] | None = None) -> None:
        self.pages = pages  # path -> HTML (or XML for .xml paths)
        self.redirects = redirects or {}
        self.hits: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # path, headers (names lowercase)
        # path -> the page's ETag: sent with it, and a 304 for an If-None-Match that matches
        self.etags: dict[str, str] = {}
        self.statuses: dict[str, int] = {}  # path -> a status answered instead of the page
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path in site.redirects:
                    self.send_response(302)
                    self.send_header("Location", site.redirects[self.path].format(port=site.port))
                    self.end_headers()
                    return
                body = site.pages.get(self.path)
                status = site.statuses.get(self.path, 200 if body is not None else 404)
                if status != 200 or body is None:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = site.etags.get(self.path)
                if etag is not None and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                kind = (
                    "application/xml" if self.path.endswith(".xml") else "text/html; charset=utf-8"
                )
                data = body.format(port=site.port).encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                if etag is not None:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)
        self.base = f"http://127.0.0.1:{self.port}"

    def conditional_hits(self, path: str) -> list[str]:
        """The If-None-Match of each request for `path` that had one."""
        return [
            headers["if-none-match"]
            for hit, headers in self.requests
            if hit == path and "if-none-match" in headers
        ]
