"""Text from uploaded files: txt, md, html, csv, pdf and docx, with headings kept as `#` lines
and blocks separated by blank lines, so that chunking can follow the document's structure.

Archive-based files (.docx is a zip) are bounded before they are opened: the sizes the archive
declares, and the bytes its entries really inflate to, may not pass `max_extracted_bytes`.
Ingestion runs this in a child process with memory and CPU limits (`app.sources.sandbox`)."""

import csv
import io
import zipfile
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
DOCX = SUPPORTED[".docx"]
# A .docx holds a few dozen parts; far more is not a document.
MAX_ARCHIVE_ENTRIES = 10_000
DEFAULT_MAX_EXTRACTED_BYTES = 50 * 1024 * 1024  # INGEST_MAX_EXTRACTED_BYTES's default
_INFLATE_STEP = 64 * 1024


class ExtractionError(Exception):
    """The file could not be read as the type it claims to be."""


def file_type(filename: str) -> str | None:
    return SUPPORTED.get(PurePath(filename).suffix.lower())


def extract_text(
    filename: str, data: bytes, max_extracted_bytes: int = DEFAULT_MAX_EXTRACTED_BYTES
) -> str:
    """The file's text; raises ExtractionError for a damaged or empty file, or one that would
    inflate past `max_extracted_bytes`. A MemoryError is left to the caller."""
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
        elif kind == DOCX:
            check_archive(filename, data, max_extracted_bytes)
            text = _docx_text(data)
        else:
            raise ExtractionError(f"unsupported file type: {filename}")
    except (ExtractionError, MemoryError):
        raise
    except Exception as error:  # parsers raise many kinds for damaged files
        raise ExtractionError(f"could not read {filename}: {error}") from error
    if not text.strip():
        raise ExtractionError(f"{filename} contains no text")
    if len(text) > max_extracted_bytes:
        raise ExtractionError(_too_large(filename, max_extracted_bytes))
    return text


def check_archive(filename: str, data: bytes, limit: int) -> None:
    """Refuses a zip whose entries declare more than `limit` bytes in all, or inflate to more
    than they declare; the entries are inflated in small steps and dropped, never held whole."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ExtractionError(f"could not read {filename}: {error}") from error
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ARCHIVE_ENTRIES:
            raise ExtractionError(
                f"could not read {filename}: {len(entries)} archive entries, "
                f"more than {MAX_ARCHIVE_ENTRIES}"
            )
        if sum(entry.file_size for entry in entries) > limit:
            raise ExtractionError(_too_large(filename, limit))
        inflated = 0
        for entry in entries:
            with archive.open(entry) as stream:
                entry_inflated = 0
                while step := stream.read(_INFLATE_STEP):
                    entry_inflated += len(step)
                    inflated += len(step)
                    if entry_inflated > entry.file_size or inflated > limit:
                        raise ExtractionError(_too_large(filename, limit))


def _too_large(filename: str, limit: int) -> str:
    return f"{filename} expands to more than {limit} bytes (INGEST_MAX_EXTRACTED_BYTES)"


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
