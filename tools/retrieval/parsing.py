"""Turn an uploaded file into text sections that keep their structure (pages, headings, lines).

Supported: PDF (one section per page, page numbers kept), Markdown and HTML (one section per
heading), plain text and source code (one section; the chunker follows paragraphs or top-level
definitions). Anything else, and any file that cannot be read, raises `DocumentError`; a file over
a `ParseLimits` bound raises `DocumentTooLarge`. PDFs are extracted in a bounded child process
(pdf_worker.py), since a small PDF can expand to far more text than its size suggests.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

from bs4 import BeautifulSoup

from tools.retrieval.config import ParseLimits
from tools.retrieval.errors import DocumentError, DocumentTooLarge

PDF_WORKER = Path(__file__).with_name("pdf_worker.py")

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
TEXT_SUFFIXES = {".txt", ".text", ".rst", ".log", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ""}
CODE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".scala", ".c", ".h",
    ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".sh", ".bash", ".sql", ".lua", ".r", ".m",
}
_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6"]


@dataclass(frozen=True)
class Section:
    """A run of text with one citation location.

    Attributes:
        text: the section's text.
        page: 1-based PDF page number, else None.
        heading: heading path such as "Intro > Setup" (Markdown/HTML), else None.
        first_line: 1-based line of the original file where `text` starts (text and code).
    """

    text: str
    page: int | None = None
    heading: str | None = None
    first_line: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """A file's kind (pdf, markdown, html, text, code), its sections and page count."""

    kind: str
    sections: list[Section]
    n_pages: int | None = None


def parse_document(filename: str, data: bytes, limits: ParseLimits | None = None) -> ParsedDocument:
    """Parse `data` by its content and file name; raise `DocumentError` when it cannot be used."""
    limits = limits or ParseLimits()
    if not data:
        raise DocumentError("the file is empty")
    suffix = PurePath(filename).suffix.lower()
    if data.startswith(b"%PDF-") or suffix == ".pdf":
        parsed = _parse_pdf(data, limits)
    else:
        text = _decode_text(data)
        if len(text) > limits.max_chars:
            raise DocumentTooLarge(f"the file has {len(text):,} characters of text; the limit is {limits.max_chars:,}")
        if suffix in HTML_SUFFIXES or re.match(r"\s*<(!doctype html|html)", text[:200], re.I):
            parsed = ParsedDocument("html", _html_sections(text))
        elif suffix in MARKDOWN_SUFFIXES:
            parsed = ParsedDocument("markdown", _markdown_sections(text))
        elif suffix in CODE_SUFFIXES:
            parsed = ParsedDocument("code", [Section(text, first_line=1)])
        else:
            parsed = ParsedDocument("text", [Section(text, first_line=1)])
    sections = [s for s in parsed.sections if s.text.strip()]
    if not sections:
        raise DocumentError("no text could be extracted from the file")
    return ParsedDocument(parsed.kind, sections, parsed.n_pages)


def _decode_text(data: bytes) -> str:
    """Decode a text file (UTF-8, or UTF-16 with a BOM); reject binary content."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError("the file is not valid UTF-16 text") from exc
    if b"\x00" in data:
        raise DocumentError("the file looks binary; upload PDF, Markdown, HTML, text or source code")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError("the file is not UTF-8 text; upload PDF, Markdown, HTML, text or source code") from exc
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 65536):
        raise DocumentError("the file looks binary; upload PDF, Markdown, HTML, text or source code")
    return text


def _parse_pdf(data: bytes, limits: ParseLimits) -> ParsedDocument:
    """One section per page with text; pages keep their 1-based numbers."""
    if not data.startswith(b"%PDF-"):
        raise DocumentError("the file is not a valid PDF (no %PDF header)")
    try:
        done = subprocess.run([sys.executable, str(PDF_WORKER), json.dumps(asdict(limits))], input=data,
                              capture_output=True, timeout=limits.wall_seconds, check=False)
    except subprocess.TimeoutExpired:
        raise DocumentError(f"the PDF took longer than {limits.wall_seconds:g} s to extract; "
                            f"upload a smaller or simpler file") from None
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:  # killed by its CPU or memory limit
        raise DocumentError(f"the PDF needs more than {limits.cpu_seconds} CPU-seconds or "
                            f"{limits.memory_bytes >> 20} MB to extract; upload a smaller or simpler file") from None
    if "pages" in answer:
        pages = [Section(text, page=number) for number, text in enumerate(answer["pages"], 1)]
        return ParsedDocument("pdf", pages, n_pages=len(pages))
    raise _pdf_error(answer, limits)


def _pdf_error(answer: dict, limits: ParseLimits) -> DocumentError:
    error = answer["error"]
    if error == "encrypted":
        return DocumentError("the PDF is encrypted with a password; upload an unencrypted copy")
    if error == "memory":
        return DocumentError(f"the PDF needs more than {limits.memory_bytes >> 20} MB to extract")
    if error == "too_large":
        what, value = answer["what"], answer["value"]
        if what == "page_content_bytes":
            return DocumentTooLarge(f"page {answer['page']} of the PDF has {value:,} bytes of content; the limit is "
                                    f"{limits.max_page_content_bytes:,} per page")
        bound = {"pages": (limits.max_pages, "pages"), "chars": (limits.max_chars, "characters of text"),
                 "content_bytes": (limits.max_content_bytes, "bytes of page content")}[what]
        more = "" if what == "pages" else "more than "
        return DocumentTooLarge(f"the PDF has {more}{value:,} {bound[1]}; the limit is {bound[0]:,}")
    return DocumentError(f"the PDF could not be read (corrupt or damaged): {answer.get('type', error)}")


def _markdown_sections(text: str) -> list[Section]:
    """Split at ATX headings outside fenced code; each section is titled by its heading path."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    start, in_fence = 0, False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _ATX_HEADING.match(line.rstrip("\n"))
        if match is None:
            continue
        sections.append(_heading_section(lines[start:number], path, start))
        level, title = len(match.group(1)), match.group(2)
        path = [p for p in path if p[0] < level] + [(level, title)]
        start = number
    sections.append(_heading_section(lines[start:], path, start))
    return sections


def _heading_section(lines: list[str], path: list[tuple[int, str]], start: int) -> Section:
    heading = " > ".join(title for _, title in path) or None
    return Section("".join(lines), heading=heading, first_line=start + 1)


def _html_sections(html: str) -> list[Section]:
    """Visible text split at h1-h6; scripts and styles dropped."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    marker = "\u2063SECTION\u2063"
    for tag in soup.find_all(_HEADING_TAGS):
        title = " ".join(tag.get_text(" ").split())
        tag.replace_with(f"\n{marker}{tag.name[1]}{marker}{title}\n")
    text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text("\n"))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    parts = text.split(marker)
    sections.append(Section(parts[0]))
    for level, rest in zip(parts[1::2], parts[2::2], strict=False):
        title, _, body = rest.partition("\n")
        path = [p for p in path if p[0] < int(level)] + [(int(level), title)]
        sections.append(Section(f"{title}\n{body}", heading=" > ".join(t for _, t in path)))
    return sections
