"""URL sources: one page, the pages a sitemap lists, or a same-site crawl."""

import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from app.sources.fetch import Fetcher, FetchError, FetchSession, Page, UnsafeUrlError
from app.sources.html import html_title, html_to_text
from app.sources.patterns import matches


@dataclass(frozen=True)
class WebPage:
    url: str
    title: str
    text: str


@dataclass(frozen=True)
class CrawlSpec:
    url: str
    mode: str  # page | sitemap | crawl
    max_depth: int
    max_pages: int
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def wanted(self, url: str) -> bool:
        path = urlsplit(url).path or "/"
        if self.include and not matches(self.include, path):
            return False
        return not matches(self.exclude, path)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _links(base: str, html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    origin = urlsplit(base).netloc
    found = []
    for href in parser.hrefs:
        url = urldefrag(urljoin(base, href)).url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc == origin:
            found.append(url)
    return found


def _page(url: str, content_type: str, body: bytes) -> WebPage:
    text = body.decode("utf-8", errors="replace")
    if content_type in ("text/html", "application/xhtml+xml") or "<html" in text[:1000].lower():
        return WebPage(url, html_title(text) or url, html_to_text(text))
    return WebPage(url, url, text)


Progress = Callable[[int, int], Awaitable[None]]


def _sitemap_urls(sitemap: Page) -> list[str]:
    """The <loc> URLs of a sitemap; FetchError (the source fails with it) when it is not XML."""
    try:
        root = ElementTree.fromstring(sitemap.body)
    except ElementTree.ParseError as error:
        raise FetchError(f"{sitemap.url} is not a readable XML sitemap ({error})") from None
    return [
        element.text.strip()
        for element in root.iter()
        if element.tag.endswith("loc") and element.text
    ]


async def collect(spec: CrawlSpec, fetcher: Fetcher, progress: Progress) -> list[WebPage]:
    """The pages the spec asks for. Pages that fail are skipped, unless the first one does
    (then the whole source fails with its reason)."""
    async with fetcher.session() as session:
        return await _collect(spec, session, progress)


async def _collect(spec: CrawlSpec, session: FetchSession, progress: Progress) -> list[WebPage]:
    if spec.mode == "sitemap":
        sitemap = await session.get(spec.url)
        origin = urlsplit(sitemap.url).netloc
        urls = _sitemap_urls(sitemap)
        queue = deque(
            (url, 0) for url in urls if urlsplit(url).netloc == origin and spec.wanted(url)
        )
        max_depth = 0
    else:
        queue = deque([(spec.url, 0)])
        max_depth = spec.max_depth if spec.mode == "crawl" else 0
    seen = {url for url, _ in queue}
    pages: list[WebPage] = []
    first = True
    while queue and len(pages) < spec.max_pages:
        url, depth = queue.popleft()
        try:
            fetched = await session.get(url)
        except (FetchError, UnsafeUrlError):
            if first and spec.mode != "sitemap":
                raise
            continue
        finally:
            first = False
        page = _page(fetched.url, fetched.content_type, fetched.body)
        if page.text.strip():
            pages.append(page)
        await progress(len(pages), min(spec.max_pages, len(pages) + len(queue)))
        if depth < max_depth:
            for link in _links(fetched.url, fetched.body.decode("utf-8", errors="replace")):
                if link not in seen and spec.wanted(link):
                    seen.add(link)
                    queue.append((link, depth + 1))
    return pages
