"""Small real documents for ingestion tests: PDF (written by hand, one text line per line),
DOCX (python-docx) and HTML."""

import io

from docx import Document


def pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text any PDF reader extracts line by line."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    body = "BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({escape(line)}) Tj T*" for line in lines)
    stream = (body + " ET").encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def docx(title: str, sections: dict[str, str]) -> bytes:
    document = Document()
    document.add_heading(title, level=1)
    for heading, text in sections.items():
        document.add_heading(heading, level=2)
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html(title: str, sections: dict[str, str]) -> bytes:
    parts = "".join(f"<h2>{heading}</h2><p>{text}</p>" for heading, text in sections.items())
    page = (
        f"<html><head><title>{title}</title><script>var tracking = 1;</script></head>"
        f"<body><nav>Home | About</nav><h1>{title}</h1>{parts}<footer>(c) Example</footer></body>"
        "</html>"
    )
    return page.encode()
