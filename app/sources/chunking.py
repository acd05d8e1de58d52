"""Structure-aware chunking: sections follow the document's headings and keep their heading
path; a section's blocks (paragraphs, list items, definition-list entries, tables, code) are
packed into chunks of about `size` characters without splitting a block that fits. A block
longer than `size` is split between its lines (table rows, code lines), then sentences."""

import re
from dataclasses import dataclass

from app.retrieval.analysis import split_sentences

_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int
    heading: str  # "Guide > Returns", the headings above this text
    content: str


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading path, blocks) pairs in document order; a fenced code block is one block and
    its `#` lines are not headings."""
    path: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    blocks: list[str] = []
    block: list[str] = []
    fenced = False

    def end_block() -> None:
        if any(line.strip() for line in block):
            blocks.append("\n".join(block).strip("\n"))
        block.clear()

    def end_section() -> None:
        end_block()
        if blocks:
            sections.append((" > ".join(path), list(blocks)))
        blocks.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            if not fenced:
                end_block()
            block.append(line)
            fenced = not fenced
            if not fenced:
                end_block()
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            end_section()
            level = len(match.group(1))
            path[:] = [*path[: level - 1], match.group(2)]
        elif not fenced and not line.strip():
            end_block()
        else:
            block.append(line)
    end_section()
    return sections


def _pieces(block: str, size: int) -> list[str]:
    """The block whole when it fits; otherwise its lines, then sentences, then hard cuts."""
    flat = " ".join(block.split())
    if len(flat) <= size:
        return [flat]
    pieces: list[str] = []
    lines = [" ".join(line.split()) for line in block.splitlines() if line.strip()]
    for line in lines:
        parts = [line] if len(line) <= size else split_sentences(line)
        for part in parts:
            while len(part) > size:
                pieces.append(part[:size])
                part = part[size:]
            if part:
                pieces.append(part)
    return pieces


def chunk_text(text: str, size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for heading, blocks in _sections(text):
        current = ""
        for block in blocks:
            for piece in _pieces(block, size):
                if current and len(current) + 1 + len(piece) > size:
                    chunks.append(Chunk(len(chunks), heading, current))
                    tail = current[-overlap:] if overlap else ""
                    # Start the overlap at a word boundary.
                    current = tail[tail.find(" ") + 1 :] if " " in tail else tail
                current = f"{current} {piece}".strip()
        if current:
            chunks.append(Chunk(len(chunks), heading, current))
    return chunks
