"""Test documents made on the spot: PDFs with reportlab, and varied filler text."""
from __future__ import annotations

import io

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
