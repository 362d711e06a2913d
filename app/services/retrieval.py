"""The app's retrieval glue: one `DocumentIndex` per app, an ingest worker, and the doc-QA agent.

The embedding model and tokenizer load on first use (in the background from the first
document request on), not at import. Uploads are parsed in the request (so unusable files get
their 4xx before anything is stored); chunking, embedding and storing run on one worker thread,
and the upload waits for it up to `ingest_wait_s`, otherwise answering 202 with the document
still `processing`.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from agents.docqa import DocQAAgent, DocQAConfig
from agents.model_client import ChatModel, ModelConfig
from app.backends.base import ModelBackend
from app.core.config import Settings
from app.db.models import Document
from tools.retrieval import DocumentIndex, ParseLimits, PreparedDocument, RetrievalConfig, TokenCounter
from tools.retrieval.chunking import chunk_document
from tools.retrieval.parsing import ParsedDocument
from tools.retrieval.embeddings import MiniLMEmbeddingFunction

log = logging.getLogger("app.retrieval")
_CREATE_LOCK = threading.Lock()


@dataclass(frozen=True)
class RetrievalOptions:
    """Retrieval knobs derived from the app's Settings (DeepSeek-V3 window by default)."""

    config: RetrievalConfig
    qa: DocQAConfig
    ingest_wait_s: float
    embedding_cache_dir: Path
    embedding_threads: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetrievalOptions":
        """Uploads wait briefly for indexing (small files finish), then answer 202 (poll the status)."""
        return cls(
            config=RetrievalConfig(
                persist_dir=settings.var_dir / "chroma", chroma_url=settings.chroma_url,
                parse=ParseLimits(max_pages=settings.parse_max_pages, max_chars=settings.parse_max_chars,
                                  max_content_bytes=settings.parse_max_content_bytes,
                                  cpu_seconds=settings.parse_cpu_seconds,
                                  wall_seconds=min(settings.parse_cpu_seconds * 1.5, settings.request_timeout_s / 2)),
            ),
            qa=DocQAConfig(),
            ingest_wait_s=min(3.0, settings.request_timeout_s / 2),
            embedding_cache_dir=settings.embedding_cache_dir or settings.var_dir / "models",
            embedding_threads=settings.embedding_threads,
        )


class RetrievalService:
    """Owns the index (loaded lazily, once) and the ingest worker of one app."""

    def __init__(self, options: RetrievalOptions, sessions: sessionmaker[Session]) -> None:
        self.options = options
        self._sessions = sessions
        self._counter: TokenCounter | None = None
        self._index: DocumentIndex | None = None
        self._counter_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        self._warm = self._worker.submit(lambda: self.index)

    @property
    def counter(self) -> TokenCounter:
        """The model's tokenizer (quick to load)."""
        with self._counter_lock:
            if self._counter is None:
                self._counter = TokenCounter.from_file()
            return self._counter

    @property
    def index(self) -> DocumentIndex:
        """The document index; the first call loads the embedding model (slow)."""
        counter = self.counter
        with self._index_lock:
            if self._index is None:
                embedder = MiniLMEmbeddingFunction(self.options.embedding_cache_dir, self.options.embedding_threads).load()
                self._index = DocumentIndex(self.options.config, counter, embedder)
            return self._index

    def index_in_background(self, document_id: str, filename: str, file_sha256: str, parsed: ParsedDocument) -> Future:
        """Chunk, embed and store a parsed upload on the worker; its row becomes `ready` or `failed`."""
        return self._worker.submit(self._store, document_id, filename, file_sha256, parsed)

    def _store(self, document_id: str, filename: str, file_sha256: str, parsed: ParsedDocument) -> None:
        try:
            chunked = chunk_document(parsed, self.counter, self.options.config)
            result = self.index.store(document_id, PreparedDocument(filename, file_sha256, parsed, chunked))
        except Exception as exc:
            log.exception("ingest failed", extra={"document_id": document_id})
            self._set_status(document_id, "failed", 0, None, f"indexing failed: {type(exc).__name__}")
            raise
        self._set_status(document_id, "ready", result.n_chunks, result.n_tokens, None)

    def _set_status(self, document_id: str, status: str, n_chunks: int, n_tokens: int | None, error: str | None) -> None:
        with self._sessions() as db:
            doc = db.get(Document, document_id)
            if doc is None:  # deleted while indexing
                self.index.delete(document_id)
                return
            doc.status, doc.n_chunks, doc.error = status, n_chunks, error
            doc.meta = {**doc.meta, "n_tokens": n_tokens}
            db.commit()

    def qa_agent(self, backend: ModelBackend, timeout_s: float) -> DocQAAgent:
        """A doc-QA agent talking to the app's model backend."""
        model = ChatModel(
            ModelConfig(
                base_url=backend.base_url,
                model=backend.model_name,
                api_key=backend.api_key or "not-needed",
                timeout_s=timeout_s,
                max_tokens=self.options.qa.answer_reserve,
            )
        )
        return DocQAAgent(self.index, model, self.options.qa)


def retrieval_service(request: Request) -> RetrievalService:
    """The app's RetrievalService, created on first use."""
    state = request.app.state
    with _CREATE_LOCK:
        service = getattr(state, "retrieval", None)
        if service is None:
            service = RetrievalService(RetrievalOptions.from_settings(state.settings), state.sessionmaker)
            state.retrieval = service
    return service
