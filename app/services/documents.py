"""Documents: upload (validate, dedupe, keep the bytes, queue ingestion), readiness, delete,
passages and search; and the `ingest` job handler.

An upload is parsed and chunked in the request by the retrieval package's pipeline
(`prepare_document`), so an unusable file gets its 4xx before anything is stored; a usable one is
written to VAR_DIR/uploads/<id>, gets a `pending` row and an `ingest` job, and the request waits
up to `ingest_wait_s` for it to be `ready`. The job embeds and stores the prepared document
(`processing`, progress in `meta["progress"]`); when the job is a resumption (its process died),
or runs in another process, it prepares the document again from the kept bytes. Storing is
idempotent per document id, so a restarted ingestion replaces whatever half of it was stored.
The kept bytes are removed once the document is ready, failed or deleted.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.models import Document, JobStatus, User
from app.services.errors import Invalid, NotFound, TooLarge, Unusable
from app.services.jobs import JobContext, JobRunner
from app.services.retrieval import RetrievalService
from tools.retrieval import DocumentError, DocumentTooLarge, IngestProgress, PreparedDocument, SearchHit
from tools.retrieval.index import StoredChunk, prepare_document

log = logging.getLogger("app.documents")
KIND = "ingest"
MAX_NAME_CHARS = 255


def clean_filename(raw: str | None) -> str:
    """The upload's file name; Invalid when it is missing or could name a path."""
    name = (raw or "").strip()
    if not name:
        raise Invalid("the upload has no file name")
    if "/" in name or "\\" in name or ".." in name or any(ord(ch) < 32 for ch in name) or len(name) > MAX_NAME_CHARS:
        raise Invalid(f"invalid file name {name[:80]!r}: use a plain name without '/', '\\', '..' or control "
                      f"characters, at most {MAX_NAME_CHARS} characters")
    return name


class Documents:
    """The document service and the `ingest` job handler of one app process."""

    kind = KIND

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], retrieval: RetrievalService) -> None:
        self.sessions = sessions
        self.retrieval = retrieval
        self.max_workers = settings.job_ingest_workers
        self.uploads = settings.var_dir / "uploads"
        self._prepared: dict[str, PreparedDocument] = {}  # prepared in this process's request, for its job

    # -- what routes call ------------------------------------------------------------------
    def upload(self, db: Session, jobs: JobRunner, user: User, filename: str | None, content_type: str | None,
               data: bytes) -> tuple[Document, bool]:
        """The document for these bytes and whether it is new (same name and bytes: the existing one)."""
        name = clean_filename(filename)
        sha256 = hashlib.sha256(data).hexdigest()
        same = db.scalar(select(Document).where(Document.owner_id == user.id, Document.sha256 == sha256,
                                                Document.filename == name, Document.status != "failed"))
        if same is not None:
            return same, False
        options = self.retrieval.options
        try:
            prepared = prepare_document(name, data, self.retrieval.counter, options.config)
        except DocumentTooLarge as exc:
            raise TooLarge(f"cannot use {name!r}: {exc}") from exc
        except DocumentError as exc:
            raise Unusable(f"cannot use {name!r}: {exc}") from exc
        doc = Document(owner_id=user.id, filename=name, content_type=content_type or "application/octet-stream",
                       size_bytes=len(data), sha256=sha256, status="pending", n_pages=prepared.parsed.n_pages,
                       meta={"kind": prepared.parsed.kind})
        db.add(doc)
        db.flush()
        self._keep(doc.id, data)
        self._prepared[doc.id] = prepared
        jobs.enqueue(db, KIND, doc.id, user.id)
        db.commit()
        jobs.wake()
        self._wait(db, doc, options.ingest_wait_s)
        return doc, True

    def delete(self, db: Session, jobs: JobRunner, doc: Document) -> None:
        jobs.cancel(KIND, doc.id)
        self.retrieval.index.delete(doc.id)
        self._forget(doc.id)
        db.delete(doc)
        db.commit()

    def ready_ids(self, db: Session, owner_id: str) -> list[str]:
        """Ids of the owner's searchable documents, oldest first."""
        query = select(Document.id).where(Document.owner_id == owner_id, Document.status == "ready")
        return list(db.scalars(query.order_by(Document.created_at)))

    def passage(self, doc: Document, chunk_id: str) -> StoredChunk:
        chunk = self.retrieval.index.chunk(chunk_id)
        if chunk is None or chunk.document_id != doc.id:
            raise NotFound(f"chunk {chunk_id} not found in document {doc.id}")
        return chunk

    def search(self, db: Session, user: User, query: str, k: int) -> list[SearchHit]:
        return self.retrieval.index.search(query, k=k, document_ids=self.ready_ids(db, user.id))

    # -- the job ---------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        with self.sessions() as db:
            doc = db.get(Document, ctx.subject_id)
            if doc is None or doc.status in ("ready", "failed"):
                return
            filename = doc.filename
        prepared = self._prepared.pop(ctx.subject_id, None)
        if prepared is None:  # resumed, or queued by another process: prepare again from the kept bytes
            data = self._path(ctx.subject_id).read_bytes()
            prepared = prepare_document(filename, data, self.retrieval.counter, self.retrieval.options.config)
        self._update(ctx.subject_id, status="processing")

        def progress(report: IngestProgress) -> None:
            self._update(ctx.subject_id, progress=report)
            ctx.check()  # a stopping app or a deleted document ends the job between batches

        result = self.retrieval.index.store(ctx.subject_id, prepared, progress)
        self._update(ctx.subject_id, status="ready", n_chunks=result.n_chunks, n_tokens=result.n_tokens)
        self._forget(ctx.subject_id)

    def finish(self, subject_id: str, status: JobStatus, error: str | None) -> None:
        if status == JobStatus.failed:
            self.retrieval.index.delete(subject_id)
            self._update(subject_id, status="failed", error=f"indexing failed: {error}"[:500])
            self._forget(subject_id)

    # -- helpers ---------------------------------------------------------------------------
    def _path(self, document_id: str) -> Path:
        return self.uploads / document_id

    def _keep(self, document_id: str, data: bytes) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        tmp = self._path(document_id).with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(document_id))

    def _forget(self, document_id: str) -> None:
        self._prepared.pop(document_id, None)
        self._path(document_id).unlink(missing_ok=True)

    def _wait(self, db: Session, doc: Document, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while doc.status in ("pending", "processing") and time.monotonic() < deadline:
            time.sleep(0.05)
            db.refresh(doc)

    def _update(self, document_id: str, status: str | None = None, progress: IngestProgress | None = None,
                error: str | None = None, n_chunks: int | None = None, n_tokens: int | None = None) -> None:
        """Write the document row's status, progress or result; a row deleted meanwhile drops its chunks."""
        with self.sessions() as db:
            doc = db.get(Document, document_id)
            if doc is None:
                self.retrieval.index.delete(document_id)
                return
            meta = dict(doc.meta)
            if progress is not None:
                meta["progress"] = asdict(progress)
            if n_tokens is not None:
                meta["n_tokens"] = n_tokens
            doc.status = status or doc.status
            doc.error = error
            doc.n_chunks = doc.n_chunks if n_chunks is None else n_chunks
            doc.meta = meta
            db.commit()
