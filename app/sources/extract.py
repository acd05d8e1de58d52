"""Text from uploaded files: txt, md, html, csv, pdf and docx, with headings kept as `#` lines
and blocks separated by blank lines, so that chunking can follow the document's structure."""

import csv
import io
from pathlib import PurePath

from docx import Document as open_docx
from pypdf import PdfReader

from app.sources.html import html_to_text

SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".csv": "text/csv",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


class ExtractionError(Exception):
    """The file could not be read as the type it claims to be."""


def file_type(filename: str) -> str | None:
    return SUPPORTED.get(PurePath(filename).suffix.lower())


def extract_text(filename: str, data: bytes) -> str:
    """The file's text; raises ExtractionError for a damaged or empty file."""
    kind = file_type(filename)
    try:
        if kind in ("text/plain", "text/markdown"):
            text = data.decode("utf-8", errors="replace")
        elif kind == "text/html":
            text = html_to_text(data.decode("utf-8", errors="replace"))
        elif kind == "text/csv":
            text = _csv_text(data.decode("utf-8", errors="replace"))
        elif kind == "application/pdf":
            reader = PdfReader(io.BytesIO(data))
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        elif kind is not None:
            text = _docx_text(data)
        else:
            raise ExtractionError(f"unsupported file type: {filename}")
    except ExtractionError:
        raise
    except Exception as error:  # parsers raise many kinds for damaged files
        raise ExtractionError(f"could not read {filename}: {error}") from error
    if not text.strip():
        raise ExtractionError(f"{filename} contains no text")
    return text


def _csv_text(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return ""
    header, body = rows[0], rows[1:]
    if not body:
        return ", ".join(header)
    # One line per row, each value labelled by its column: readable and searchable.
    return "\n".join(
        "; ".join(f"{name}: {value}" for name, value in zip(header, row, strict=False) if value)
        for row in body
    )


def _docx_text(data: bytes) -> str:
    document = open_docx(io.BytesIO(data))
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") and style[-1:].isdigit():
            lines.append("#" * int(style[-1]) + " " + paragraph.text)
        elif style == "Title":
            lines.append("# " + paragraph.text)
        else:
            lines.append(paragraph.text)
    return "\n".join(lines)
