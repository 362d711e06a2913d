"""Citations in an answer, and whether each points at a passage the model was given.

A citation is written `[file name, p. N]`, `[file name, § Section]` or `[file name, lines A-B]`
(the passage labels of context.py). One pointing at a page, section or line range that was not
in the context does not exist and is reported as such.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tools.retrieval.context import Passage

_CITATION = re.compile(
    r"\[(?P<file>[^\[\],]+?),\s*(?:(?:p\.|pp\.|page)\s*(?P<page>\d+)|lines?\s*(?P<a>\d+)\s*[-–]\s*(?P<b>\d+)"
    r"|§\s*(?P<section>[^\]]+?))\s*\]"
)
_LINES = re.compile(r"^lines (\d+)-(\d+)$")


@dataclass(frozen=True)
class Citation:
    """One citation found in an answer; `passage` is the cited passage, None when it does not exist."""

    text: str
    filename: str
    page: int | None
    section: str | None
    passage: Passage | None

    @property
    def exists(self) -> bool:
        return self.passage is not None


def check_citations(answer: str, passages: list[Passage]) -> list[Citation]:
    """Every distinct citation in `answer`, in order of first appearance, matched against `passages`."""
    citations: list[Citation] = []
    seen: set[str] = set()
    for match in _CITATION.finditer(answer):
        if match.group(0) in seen:
            continue
        seen.add(match.group(0))
        filename = match.group("file").strip()
        page = int(match.group("page")) if match.group("page") else None
        if match.group("a"):
            section = f"lines {match.group('a')}-{match.group('b')}"
        else:
            section = _norm(match.group("section")) if match.group("section") else None
        passage = next((p for p in passages if _matches(p, filename, page, section)), None)
        citations.append(Citation(match.group(0), filename, page, section, passage))
    return citations


def _matches(passage: Passage, filename: str, page: int | None, section: str | None) -> bool:
    if passage.filename.lower() != filename.lower():
        return False
    if page is not None:
        return passage.page == page
    cited, given = _LINES.match(section or ""), _LINES.match(passage.section or "")
    if cited and given:
        return int(cited.group(1)) <= int(given.group(2)) and int(given.group(1)) <= int(cited.group(2))
    if section is None:
        return False
    given_section, cited_section = _norm(passage.section or "start").lower(), section.lower()
    return given_section == cited_section or given_section.endswith(" > " + cited_section)


def _norm(text: str) -> str:
    return " ".join(text.split())
