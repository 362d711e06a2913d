"""Retrieval over long documents: ingest, hybrid search (vectors + BM25, fused) and context assembly.

Entry points:
- `DocumentIndex` (index.py): ingest a file into a collection and search it.
- `assemble_context` (context.py): fit documents, or their best chunks, into a model's token budget.
- `RetrievalConfig` (config.py): every knob, passed down explicitly.
"""
from tools.retrieval.config import ParseLimits, RetrievalConfig
from tools.retrieval.context import AssembledContext, Passage, assemble_context
from tools.retrieval.errors import DocumentError, DocumentTooLarge
from tools.retrieval.index import (
    DocumentIndex, IngestProgress, IngestResult, PreparedDocument, ProgressCallback, SearchHit,
)
from tools.retrieval.tokens import TokenCounter

__all__ = [
    "AssembledContext",
    "DocumentError",
    "DocumentTooLarge",
    "DocumentIndex",
    "IngestProgress",
    "IngestResult",
    "PreparedDocument",
    "ParseLimits",
    "Passage",
    "ProgressCallback",
    "RetrievalConfig",
    "SearchHit",
    "TokenCounter",
    "assemble_context",
]
