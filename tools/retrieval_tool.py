"""Retrieval tool over the document store, behind the :class:`DocumentSearch` interface.

``tools.retrieval.DocumentIndex`` implements the interface; anything else with the same
``search`` method (a remote API client, a test double) can be plugged in.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from tools.registry import Tool

MAX_PASSAGE_CHARS = 2_000


@runtime_checkable
class SearchHitLike(Protocol):
    """One passage: the fields of contract 7's search results."""

    document_id: str
    chunk_id: str
    text: str
    score: float
    page: int | None
    section: str | None


@runtime_checkable
class DocumentSearch(Protocol):
    """Search over stored documents, best first."""

    def search(self, query: str, k: int = 5, document_ids: list[str] | None = None) -> Sequence[SearchHitLike]:
        ...


class SearchDocumentsArgs(BaseModel):
    query: str = Field(min_length=1, description="What to look for, in words")
    k: int = Field(5, ge=1, le=20, description="How many passages to return")
    document_ids: list[str] | None = Field(None, description="Only search these documents")


def format_hits(hits: Sequence[SearchHitLike]) -> str:
    """Passages as numbered, citable blocks: [n] document/chunk, page or section, score, text."""
    if not hits:
        return "(no matching passages)"
    blocks = []
    for n, hit in enumerate(hits, 1):
        where = f"page {hit.page}" if hit.page is not None else (f"section {hit.section}" if hit.section else "")
        text = hit.text if len(hit.text) <= MAX_PASSAGE_CHARS else hit.text[:MAX_PASSAGE_CHARS] + " ..."
        blocks.append(f"[{n}] document={hit.document_id} chunk={hit.chunk_id} {where} score={hit.score:.3f}\n{text}")
    return "\n\n".join(blocks)


def retrieval_tool(search: DocumentSearch) -> Tool:
    return Tool("search_documents", "Search the uploaded documents and return the best passages with "
                "their document, chunk and page/section for citation.", SearchDocumentsArgs,
                lambda a: format_hits(search.search(a.query, k=a.k, document_ids=a.document_ids)))
