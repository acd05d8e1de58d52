"""Checks the RAG evaluation set against the pages it is about.

Run from the repository root: `.venv/bin/python bench/rag/check_cases.py`. For every page in
pages.txt it extracts the visible text with the product's own extractor, and checks that:

- every evidence phrase (4 to 12 words) occurs in the text of its case's source page, inside a
  single block of the page (paragraph, list item, table cell, code block), and in no other page;
- no question copies a run of more than MAX_COPIED_WORDS consecutive words of its page;
- ids are unique, the counts are met, and each page has at least MIN_PER_PAGE questions.

It prints a summary and exits non-zero, listing every failure, if any check fails.
"""

import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.sources.extract import extract_text  # noqa: E402
from bench.rag.dataset import CASES_FILE, load_cases, page_paths  # noqa: E402

MIN_ANSWERABLE = 60
MIN_UNANSWERABLE = 20
MIN_PER_PAGE = 5
MAX_COPIED_WORDS = 7
VOCABULARIES = {"corpus", "general"}


def normalize(text: str) -> str:
    """Whitespace collapsed to single spaces, lowercased."""
    return " ".join(text.split()).lower()


class _Blocks(HTMLParser):
    """A page's visible text cut at block boundaries, so that a phrase can be held to one block."""

    _BREAKS = frozenset(
        {"p", "div", "li", "dt", "dd", "td", "th", "tr", "table", "ul", "ol", "dl", "pre"}
        | {"br", "hr", "blockquote", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _SKIP = frozenset({"head", "title", "script", "style", "noscript", "nav", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = [""]
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.blocks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.blocks.append("")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.blocks[-1] += data


def blocks_of(html: str) -> list[str]:
    parser = _Blocks()
    parser.feed(html)
    return [block for block in map(normalize, parser.blocks) if block]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def longest_copied_run(question: str, page_text: str) -> int:
    """The longest run of consecutive question words that also occurs in the page's text."""
    question_words, page = words(question), " " + " ".join(words(page_text)) + " "
    best = 0
    for start in range(len(question_words)):
        for end in range(start + best + 1, len(question_words) + 1):
            if " " + " ".join(question_words[start:end]) + " " not in page:
                break
            best = end - start
    return best


def check_case(
    case: dict[str, Any], texts: dict[str, str], blocks: dict[str, list[str]]
) -> list[str]:
    """The failures of one case."""
    cid = case.get("id", "?")
    question = case.get("question")
    if not isinstance(question, str) or not question.strip():
        return [f"{cid}: no question"]
    if case.get("unanswerable"):
        if case.get("vocabulary") not in VOCABULARIES:
            return [f"{cid}: vocabulary must be one of {sorted(VOCABULARIES)}"]
        if "evidence" in case or "source" in case:
            return [f"{cid}: an unanswerable case has no evidence or source"]
        return []
    source, evidence = case.get("source"), case.get("evidence")
    if source not in texts:
        return [f"{cid}: source {source!r} is not in pages.txt"]
    if not isinstance(evidence, list) or not 1 <= len(evidence) <= 3:
        return [f"{cid}: evidence must be a list of 1 to 3 phrases"]
    failures = []
    for phrase in evidence:
        wanted = normalize(phrase)
        if not 4 <= len(wanted.split()) <= 12:
            failures.append(f"{cid}: evidence of {len(wanted.split())} words: {phrase!r}")
        if wanted not in texts[source]:
            failures.append(f"{cid}: evidence not in {source}: {phrase!r}")
        elif not any(wanted in block for block in blocks[source]):
            failures.append(f"{cid}: evidence spans a block boundary in {source}: {phrase!r}")
        others = [name for name, text in texts.items() if name != source and wanted in text]
        if others:
            failures.append(f"{cid}: evidence also in {', '.join(others)}: {phrase!r}")
    copied = longest_copied_run(question, texts[source])
    if copied > MAX_COPIED_WORDS:
        failures.append(f"{cid}: question copies {copied} consecutive words of {source}")
    return failures


def check_counts(cases: list[dict[str, Any]], pages: list[str]) -> list[str]:
    """The failures of the set as a whole: unique ids, enough questions of each kind and page."""
    failures = [
        f"id {cid!r} is used {count} times"
        for cid, count in Counter(case.get("id") for case in cases).items()
        if count > 1
    ]
    answerable = [case for case in cases if not case.get("unanswerable")]
    unanswerable = [case for case in cases if case.get("unanswerable")]
    corpus_vocabulary = [case for case in unanswerable if case.get("vocabulary") == "corpus"]
    per_page = Counter(case.get("source") for case in answerable)
    if len(answerable) < MIN_ANSWERABLE:
        failures.append(f"{len(answerable)} answerable questions, under {MIN_ANSWERABLE}")
    if len(unanswerable) < MIN_UNANSWERABLE:
        failures.append(f"{len(unanswerable)} unanswerable questions, under {MIN_UNANSWERABLE}")
    if 2 * len(corpus_vocabulary) < len(unanswerable):
        failures.append("fewer than half of the unanswerable questions use the corpus vocabulary")
    failures += [
        f"{page}: {per_page[page]} questions, under {MIN_PER_PAGE}"
        for page in pages
        if per_page[page] < MIN_PER_PAGE
    ]
    return failures


def summary(cases: list[dict[str, Any]], pages: list[str]) -> str:
    answerable = Counter(case.get("source") for case in cases if not case.get("unanswerable"))
    unanswerable = Counter(case.get("vocabulary") for case in cases if case.get("unanswerable"))
    lines = [
        f"{len(pages)} pages, {len(cases)} cases: {answerable.total()} answerable, "
        f"{unanswerable.total()} unanswerable ({unanswerable['corpus']} in the corpus "
        f"vocabulary, {unanswerable['general']} general)"
    ]
    lines += [f"  {answerable[page]:3d}  {page}" for page in pages]
    return "\n".join(lines)


def main() -> int:
    paths = page_paths()
    missing = [path for path in paths if not path.is_file()]
    if missing:
        print("\n".join(f"page missing: {path} (install postgresql-doc-15)" for path in missing))
        return 1
    texts: dict[str, str] = {}
    blocks: dict[str, list[str]] = {}
    for path in paths:
        data = path.read_bytes()
        texts[path.name] = normalize(extract_text(path.name, data))
        blocks[path.name] = blocks_of(data.decode("utf-8", errors="replace"))

    cases = load_cases(CASES_FILE)
    pages = [path.name for path in paths]
    failures = check_counts(cases, pages)
    for case in cases:
        failures += check_case(case, texts, blocks)

    print(summary(cases, pages))
    if failures:
        print(f"\n{len(failures)} failure(s):")
        print("\n".join(f"  {failure}" for failure in failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
