"""Test documents made on the spot: PDFs with reportlab, and varied filler text."""
from __future__ import annotations

import io
import zlib

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas


def make_pdf(pages: list[list[str]], user_password: str | None = None) -> bytes:
    """A PDF whose page i shows the lines `pages[i]`; encrypted when a user password is given."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=letter, encrypt=user_password)
    for lines in pages:
        y = 720
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_pdf_bomb(n_pages: int, page_text_bytes: int) -> bytes:
    """A small PDF whose pages each inflate to about `page_text_bytes` of text-showing operators.

    Written by hand (objects, xref, trailer) so the content streams are one repeated string that
    deflates about 1000:1: 7 pages of 10 MB come to well under 100 KB.
    """
    run = b"(" + b"A" * 2000 + b") Tj\n"
    stream = zlib.compress(b"BT /F1 1 Tf 72 720 Td\n" + run * (page_text_bytes // len(run)) + b"ET\n", 9)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i in range(n_pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
                       f" /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


TOPICS = [
    "The river delta floods each spring, and farmers plant rice in the wet soil.",
    "Compilers translate source code into machine instructions through several passes.",
    "A violin has four strings tuned in perfect fifths.",
    "Glaciers carve valleys slowly over thousands of years.",
    "The stock market reacts to interest rate announcements within minutes.",
    "Bees communicate the direction of flowers with a waggle dance.",
    "Medieval castles were built with thick stone walls and narrow windows.",
    "Photosynthesis converts sunlight, water and carbon dioxide into sugar.",
]


def filler_paragraphs(n: int) -> list[str]:
    """`n` paragraphs of plain English on varied topics (deterministic)."""
    return [f"{TOPICS[i % len(TOPICS)]} Paragraph {i} adds detail number {i * 7 % 97}." for i in range(n)]


FACT = "The inspection certificate number is 7741-B, issued by the harbour office."


def long_pdf(n_pages: int = 40, lines_per_page: int = 40, fact_page: int = 27) -> bytes:
    """A report of `n_pages` full pages of varied prose (about 850 DeepSeek-V3 tokens each); page
    `fact_page` also states `FACT`."""
    pages = []
    for page in range(1, n_pages + 1):
        lines = [f"{TOPICS[(page + i) % len(TOPICS)]} Section {page}.{i} records value {(page * 31 + i * 7) % 997}."
                 for i in range(lines_per_page)]
        if page == fact_page:
            lines.insert(lines_per_page // 2, FACT)
        pages.append(lines)
    return make_pdf(pages)
