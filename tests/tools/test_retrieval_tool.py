"""Retrieval tool over the `DocumentSearch` interface, backed by the real document index."""
from pathlib import Path

from tests.support.embedding import EMBEDDING_CACHE_DIR
from tools.registry import ToolRegistry
from tools.retrieval_tool import DocumentSearch, retrieval_tool

DOC = (
    "# Pumps\n\nThe centrifugal pump P-101 must be inspected every 400 operating hours.\n\n"
    "# Valves\n\nThe relief valve RV-7 opens at 12 bar and must be tested yearly.\n"
)


def test_search_documents_over_the_real_index(tmp_path: Path):
    from tools.retrieval import DocumentIndex, RetrievalConfig, TokenCounter
    from tools.retrieval.embeddings import MiniLMEmbeddingFunction

    index = DocumentIndex(RetrievalConfig(persist_dir=tmp_path / "chroma", chunk_tokens=32, overlap_tokens=4,
                                          min_chunk_tokens=8), TokenCounter.from_file(), MiniLMEmbeddingFunction(EMBEDDING_CACHE_DIR))
    assert isinstance(index, DocumentSearch)
    index.ingest("manual", "manual.md", DOC.encode())
    registry = ToolRegistry().register(retrieval_tool(index))
    result = registry.call("search_documents", {"query": "relief valve opening pressure", "k": 1}).result
    assert result.startswith("[1] document=manual chunk=") and "12 bar" in result
    assert "P-101" not in result
    assert registry.call("search_documents", {"query": "pump", "document_ids": ["other"]}).result == \
        "(no matching passages)"
    assert not registry.call("search_documents", {"query": "", "k": 1}).ok
    assert not registry.call("search_documents", {"query": "x", "k": 100}).ok
