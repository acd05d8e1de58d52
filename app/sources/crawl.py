"""URL sources: one page, the pages a sitemap lists, or a same-site crawl.

Pages fetched before (`known`) are asked for conditionally, and come back without text when the
server answers 304; so does a page that fails in a way that may pass (a 5xx, a timeout), so that
its previous chunks stay. The sitemap, and in a crawl each page whose links are followed, is
fetched in full: its links are needed.
"""

import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from app.sources.fetch import (
    Fetcher,
    FetchError,
    FetchSession,
    Page,
    UnsafeUrlError,
    Validators,
)
from app.sources.html import html_title, html_to_text
from app.sources.patterns import matches


@dataclass(frozen=True)
class WebPage:
    url: str  # after redirects
    title: str
    text: str | None  # None: as it was (a 304, or a failure that may pass)
    requested: str  # the URL asked for (a known page is found again by it)
    etag: str | None = None
    last_modified: str | None = None

    @property
    def kept(self) -> bool:
        return self.text is None


@dataclass(frozen=True)
class KnownPage:
    """A page fetched before whose chunks are in place: its validators and title."""

    validators: Validators
    title: str


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


def _page(requested: str, fetched: Page) -> WebPage:
    url, text = fetched.url, fetched.body.decode("utf-8", errors="replace")
    kind = fetched.content_type
    if kind in ("text/html", "application/xhtml+xml") or "<html" in text[:1000].lower():
        title, text = html_title(text) or url, html_to_text(text)
    else:
        title = url
    return WebPage(url, title, text, requested, fetched.etag, fetched.last_modified)


def _may_pass(error: FetchError | UnsafeUrlError) -> bool:
    """A failure after which the page's previous text is kept: the server may answer again."""
    if isinstance(error, UnsafeUrlError):
        return False
    return error.status is None or error.status >= 500 or error.status == 429


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


async def collect(
    spec: CrawlSpec,
    fetcher: Fetcher,
    progress: Progress,
    known: Mapping[str, KnownPage] | None = None,
) -> list[WebPage]:
    """The pages the spec asks for, once each. Pages that fail are skipped (or kept, when known
    and the failure may pass), unless the first one does (then the whole source fails with its
    reason)."""
    async with fetcher.session() as session:
        return await _collect(spec, session, progress, known or {})


async def _collect(
    spec: CrawlSpec, session: FetchSession, progress: Progress, known: Mapping[str, KnownPage]
) -> list[WebPage]:
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
    collected: set[str] = set()  # final URLs: two links redirected to one page give it once
    first = True
    while queue and len(pages) < spec.max_pages:
        url, depth = queue.popleft()
        previous = known.get(url)
        expands = depth < max_depth
        try:
            fetched = await session.get(
                url, previous.validators if previous and not expands else None
            )
        except (FetchError, UnsafeUrlError) as error:
            if first and spec.mode != "sitemap":
                raise
            if previous is not None and _may_pass(error):
                final = previous.validators.url
                if final not in collected:
                    collected.add(final)
                    pages.append(_as_before(url, previous, None, None))
            continue
        finally:
            first = False
        if fetched.not_modified:
            assert previous is not None, "only a known page is asked for conditionally"
            page = _as_before(url, previous, fetched.etag, fetched.last_modified)
        else:
            page = _page(url, fetched)
        if page.url not in collected and (page.text is None or page.text.strip()):
            collected.add(page.url)
            pages.append(page)
        await progress(len(pages), min(spec.max_pages, len(pages) + len(queue)))
        if expands and not fetched.not_modified:
            for link in _links(fetched.url, fetched.body.decode("utf-8", errors="replace")):
                if link not in seen and spec.wanted(link):
                    seen.add(link)
                    queue.append((link, depth + 1))
    return pages


def _as_before(
    requested: str, previous: KnownPage, etag: str | None, last_modified: str | None
) -> WebPage:
    validators = previous.validators
    return WebPage(
        validators.url,
        previous.title,
        None,
        requested,
        etag or validators.etag,
        last_modified or validators.last_modified,
    )
