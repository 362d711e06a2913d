"""Shared retrieval fixtures: the real tokenizer, the real embedding model, a real chromadb per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.embedding import EMBEDDING_CACHE_DIR
from tools.retrieval import DocumentIndex, RetrievalConfig, TokenCounter
from tools.retrieval.embeddings import MiniLMEmbeddingFunction


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    return TokenCounter.from_file()


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbeddingFunction:
    return MiniLMEmbeddingFunction(EMBEDDING_CACHE_DIR)


@pytest.fixture
def config(tmp_path: Path) -> RetrievalConfig:
    return RetrievalConfig(persist_dir=tmp_path / "chroma", chunk_tokens=64, overlap_tokens=8, min_chunk_tokens=16)


@pytest.fixture
def index(config: RetrievalConfig, counter: TokenCounter, embedder: MiniLMEmbeddingFunction) -> DocumentIndex:
    return DocumentIndex(config, counter, embedder)
