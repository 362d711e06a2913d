"""Parsing: page numbers, headings, code, and clear errors for files that cannot be used."""
import os

import pytest

from tests.retrieval.documents import make_pdf, make_pdf_bomb
from tools.retrieval import DocumentError, DocumentTooLarge, ParseLimits
from tools.retrieval.parsing import parse_document


def test_pdf_keeps_page_numbers() -> None:
    data = make_pdf([["First page says alpha."], [], ["Third page says gamma."]])
    parsed = parse_document("report.pdf", data)
    assert parsed.kind == "pdf" and parsed.n_pages == 3
    assert [(s.page, "alpha" in s.text, "gamma" in s.text) for s in parsed.sections] == [
        (1, True, False),
        (3, False, True),
    ]


def test_pdf_is_recognised_by_content_whatever_the_name() -> None:
    parsed = parse_document("upload.bin", make_pdf([["hello there"]]))
    assert parsed.kind == "pdf"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.pdf", b"", "empty"),
        ("empty.txt", b"", "empty"),
        ("corrupt.pdf", b"%PDF-1.7\n" + os.urandom(2000), "could not be read"),
        ("fake.pdf", b"this is not a pdf at all", "not a valid PDF"),
        ("junk.bin", bytes(range(256)) * 40, "binary"),
        ("junk.txt", b"\xff\xd8\xff\xe0" + os.urandom(4000).replace(b"\x00", b"\x01"), "UTF-8"),
        ("blank.md", b"   \n\n  \n", "no text"),
        ("scan.pdf", make_pdf([[], []]), "no text"),
    ],
)
def test_unusable_files_are_rejected_with_a_reason(name: str, data: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document(name, data)


def test_encrypted_pdf_is_rejected() -> None:
    data = make_pdf([["secret text"]], user_password="hunter2")
    with pytest.raises(DocumentError, match="encrypted"):
        parse_document("locked.pdf", data)


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        (make_pdf_bomb(7, 10 << 20), ParseLimits(), "page 1 of the PDF has 10,48"),
        (make_pdf_bomb(35, 2 << 20), ParseLimits(), "bytes of page content; the limit is 16,777,216"),
        (make_pdf_bomb(3, 200_000), ParseLimits(max_chars=300_000), "more than 396,000 characters"),
        (make_pdf([["a"], ["b"], ["c"]]), ParseLimits(max_pages=2), "has 3 pages; the limit is 2"),
        (b"x" * 5000, ParseLimits(max_chars=4000), "5,000 characters"),
    ],
)
def test_files_over_a_parse_limit_are_too_large(data: bytes, limits: ParseLimits, message: str) -> None:
    with pytest.raises(DocumentTooLarge, match=message):
        parse_document("upload.pdf" if data.startswith(b"%PDF") else "upload.txt", data, limits)


def test_pdf_extraction_past_its_cpu_limit_is_killed() -> None:
    with pytest.raises(DocumentError, match="more than 1 CPU-seconds"):
        parse_document("slow.pdf", make_pdf_bomb(1, 3 << 20), ParseLimits(cpu_seconds=1))


def test_a_small_bomb_within_the_limits_still_parses() -> None:
    parsed = parse_document("ok.pdf", make_pdf_bomb(2, 20_000))
    assert parsed.n_pages == 2 and parsed.sections[0].text.startswith("AAAA")


def test_markdown_sections_follow_headings_but_not_fenced_code() -> None:
    text = "Preface.\n# Guide\nIntro.\n## Install\nRun it.\n```\n# not a heading\n```\n## Use\nCall it.\n"
    sections = parse_document("guide.md", text.encode()).sections
    assert [s.heading for s in sections] == [None, "Guide", "Guide > Install", "Guide > Use"]
    assert "# not a heading" in sections[2].text
    assert [s.first_line for s in sections] == [1, 2, 4, 9]


def test_html_sections_drop_scripts_and_follow_headings() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body><p>Top.</p>"
        "<h1>Spec</h1><p>Body one.</p><script>alert(1)</script><h2>Limits</h2><p>Max 5 users.</p></body></html>"
    )
    sections = parse_document("spec.html", html.encode()).sections
    assert [s.heading for s in sections] == [None, "Spec", "Spec > Limits"]
    assert "Max 5 users." in sections[2].text
    assert all("alert" not in s.text and "p{}" not in s.text for s in sections)


def test_code_and_text_are_single_sections_with_line_numbers() -> None:
    code = parse_document("main.py", b"def f():\n    return 1\n")
    text = parse_document("notes", "caf\u00e9 notes\n".encode())
    assert code.kind == "code" and code.sections[0].first_line == 1
    assert text.kind == "text" and "caf\u00e9" in text.sections[0].text
