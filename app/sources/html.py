"""HTML as text with its structure kept: headings as `#` lines, one block per paragraph, list
item, definition-list entry (term and description together), table or code block, blocks
separated by a blank line; navigation, headers, footers and other page furniture dropped."""

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

_SKIP = frozenset(
    """script style noscript nav footer header aside template svg form button iframe select
    head title""".split()  # noqa: SIM905
)
# Class, id or role names of page furniture rather than content.
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navheader|navfooter|navigation|footer|breadcrumbs?|menu|"
    r"sidebar|toc|cookie|banner|skip|masthead)(?:$|[\s_-])",
    re.IGNORECASE,
)
_BLOCK = frozenset(
    """p div section article main li ul ol blockquote dt dd figure figcaption address body br
    hr caption center details summary""".split()  # noqa: SIM905
)
_HEADING = frozenset(f"h{level}" for level in range(1, 7))


def _furniture(node: LexborNode) -> bool:
    attributes = node.attributes
    names = " ".join(
        filter(None, (attributes.get("class"), attributes.get("id"), attributes.get("role")))
    )
    return bool(names) and bool(_FURNITURE.search(names))


def _inline(node: LexborNode) -> str:
    return " ".join((node.text(deep=True, separator="") or "").split())


def _flat(node: LexborNode) -> str:
    """A definition's or a cell's text on one line, its paragraphs separated by a space."""
    inner = _Blocks()
    inner.walk(node)
    inner.flush()
    return " ".join(" ".join(block.split()) for block in inner.blocks)


class _Blocks:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self._inline: list[str] = []

    def flush(self) -> None:
        text = " ".join("".join(self._inline).split())
        if text:
            self.blocks.append(text)
        self._inline.clear()

    def add(self, block: str) -> None:
        self.flush()
        if block.strip():
            self.blocks.append(block)

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag or ""
            if tag == "-text":
                self._inline.append(child.text(deep=False) or "")
            elif tag in _SKIP or tag.startswith("-") or _furniture(child):
                continue
            elif tag in _HEADING:
                self.add("#" * int(tag[1]) + " " + _inline(child))
            elif tag == "dl":
                self._definitions(child)
            elif tag == "table":
                self._table(child)
            elif tag == "pre":
                self.add((child.text(deep=True) or "").strip("\n"))
            elif tag in _BLOCK:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)  # inline markup: its text joins the current block

    def _definitions(self, dl: LexborNode) -> None:
        """Each entry (its terms and their descriptions) is one block."""
        self.flush()
        terms: list[str] = []
        descriptions: list[str] = []
        for child in dl.iter():
            if child.tag == "dt":
                if descriptions:
                    self.add(" ".join(terms) + ": " + " ".join(descriptions))
                    terms, descriptions = [], []
                terms.append(_flat(child))
            elif child.tag == "dd":
                descriptions.append(_flat(child))
        if terms or descriptions:
            self.add((" ".join(terms) + ": " if terms else "") + " ".join(descriptions))

    def _table(self, table: LexborNode) -> None:
        """One block, a line per row, cells separated by " | "."""
        rows = []
        for row in table.css("tr"):
            cells = [_flat(cell) for cell in row.iter() if cell.tag in ("td", "th")]
            if any(cells):
                rows.append(" | ".join(cells))
        caption = table.css_first("caption")
        head = [_inline(caption)] if caption is not None else []
        self.add("\n".join(head + rows))


def html_to_text(html: str) -> str:
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    blocks = _Blocks()
    blocks.walk(root)
    blocks.flush()
    return "\n\n".join(blocks.blocks)


def html_title(html: str) -> str:
    node = LexborHTMLParser(html).css_first("title")
    return _inline(node) if node is not None else ""
