"""Heading-aware chunking: sections follow the document's headings, long sections are split on
paragraph and sentence boundaries into chunks of about `size` characters with `overlap`."""

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int
    heading: str  # "Guide > Returns", the headings above this text
    content: str


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading path, body) pairs, in document order."""
    path: list[str] = []
    sections: list[tuple[str, str]] = []
    body: list[str] = []

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append((" > ".join(path), content))
        body.clear()

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path[:] = [*path[: level - 1], match.group(2)]
        else:
            body.append(line)
    flush()
    return sections


def _pieces(text: str, size: int) -> list[str]:
    """Paragraphs, then sentences, then hard cuts: no piece longer than size."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > size:
                pieces.append(sentence[:size])
                sentence = sentence[size:]
            if sentence:
                pieces.append(sentence)
    return pieces


def chunk_text(text: str, size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for heading, body in _sections(text):
        current = ""
        for piece in _pieces(body, size):
            if current and len(current) + 1 + len(piece) > size:
                chunks.append(Chunk(len(chunks), heading, current))
                tail = current[-overlap:] if overlap else ""
                # Start the overlap at a word boundary.
                current = tail[tail.find(" ") + 1 :] if " " in tail else tail
            current = f"{current} {piece}".strip()
        if current:
            chunks.append(Chunk(len(chunks), heading, current))
    return chunks
