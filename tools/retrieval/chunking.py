"""Token-aware chunking with overlap that follows structure.

Each section (a PDF page, a Markdown/HTML heading section, a whole text or code file) is cut into
chunks of at most `chunk_tokens` model tokens. A cut goes at the strongest boundary in the allowed
window: a top-level definition in code, then a blank line, a line end, a sentence end; only
without any of these is it a bare token position. Each next chunk starts `overlap_tokens` back,
moved to a boundary in that overlap when there is one. Chunks never cross sections, so each has
exactly one page or section to cite. Identical chunks of one document are kept once (content hash).
"""
from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass

from tools.retrieval.config import RetrievalConfig
from tools.retrieval.parsing import ParsedDocument, Section
from tools.retrieval.tokens import TokenCounter

_CODE_DEFINITION = re.compile(
    r"^(?:@|def |async def |class |function |export |func |fn |pub |impl |struct |interface |"
    r"public |private |protected |static |module |package |#include |import |from )",
    re.M,
)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_LINE_END = re.compile(r"\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]?(?=\s)")


@dataclass(frozen=True)
class Chunk:
    """One searchable piece of a document.

    `text` is `sections[section_index].text[char_start:char_end]` exactly, so consecutive chunks
    of a section can be joined back without their overlap.
    """

    index: int
    text: str
    page: int | None
    section: str | None
    n_tokens: int
    section_index: int
    char_start: int
    char_end: int
    content_hash: str


@dataclass(frozen=True)
class ChunkedDocument:
    """A document's chunks in reading order and its length in model tokens (without overlap)."""

    chunks: list[Chunk]
    n_tokens: int


def chunk_document(parsed: ParsedDocument, counter: TokenCounter, config: RetrievalConfig) -> ChunkedDocument:
    """All chunks of a document in reading order, deduplicated by content hash."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    total_tokens = 0
    for section_index, section in enumerate(parsed.sections):
        offsets = counter.offsets(section.text)
        total_tokens += len(offsets)
        for start, end, n_tokens in _token_windows(section.text, offsets, parsed.kind == "code", config):
            text = section.text[start:end]
            digest = hashlib.sha256(text.strip().encode("utf-8")).hexdigest()
            if not text.strip() or digest in seen:
                continue
            seen.add(digest)
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text,
                    page=section.page,
                    section=_section_label(section, start, end),
                    n_tokens=n_tokens,
                    section_index=section_index,
                    char_start=start,
                    char_end=end,
                    content_hash=digest,
                )
            )
    return ChunkedDocument(chunks, total_tokens)


def _section_label(section: Section, start: int, end: int) -> str | None:
    """Heading path when there is one, else "lines a-b" for text and code, else None (PDF pages)."""
    if section.heading:
        return section.heading
    if section.first_line is None:
        return None if section.page is not None else "start"
    body = section.text[start:end]
    lead = len(body) - len(body.lstrip())
    first = section.first_line + section.text.count("\n", 0, start + lead)
    last = section.first_line + section.text.count("\n", 0, start + len(body.rstrip()))
    return f"lines {first}-{last}"


def _token_windows(text: str, offsets: list[tuple[int, int]], is_code: bool, config: RetrievalConfig):
    """Yield `(char_start, char_end, n_tokens)` of each chunk of one section (token `offsets`)."""
    n = len(offsets)
    if n == 0:
        return
    starts = [s for s, _ in offsets]
    priority = _boundary_priority(text, starts, is_code)
    i = 0
    while i < n:
        if n - i <= config.chunk_tokens:
            end = n
        else:
            end = _best_cut(priority, i + config.min_chunk_tokens, i + config.chunk_tokens, latest=True)
        yield (starts[i] if i else 0), (starts[end] if end < n else len(text)), end - i
        if end == n:
            return
        i = max(i + 1, _best_cut(priority, end - config.overlap_tokens, end - 1, latest=False))


def _boundary_priority(text: str, starts: list[int], is_code: bool) -> list[int]:
    """priority[t]: how good a cut just before token t is (0 none, 1 sentence ... 4 definition)."""
    priority = [0] * (len(starts) + 1)
    patterns = [(_SENTENCE_END, 1), (_LINE_END, 2), (_BLANK_LINE, 3)]
    if is_code:
        patterns.append((_CODE_DEFINITION, 4))
    for pattern, value in patterns:
        for match in pattern.finditer(text):
            t = bisect.bisect_left(starts, match.end() if value < 4 else match.start())
            if value > priority[t]:
                priority[t] = value
    return priority


def _best_cut(priority: list[int], low: int, high: int, latest: bool) -> int:
    """Token index in [low, high] with the highest boundary priority (latest or earliest of ties)."""
    low = max(low, 1)
    best, best_value = (high if latest else low), 0
    for t in range(low, high + 1):
        value = priority[t]
        if value > best_value or (latest and value == best_value and value > 0):
            best, best_value = t, value
    return best
