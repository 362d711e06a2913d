"""Documents (contract 7): upload, list, get, delete, read a passage, and search.

`POST /api/documents` (multipart field `file`) validates the name and the content before anything
is stored: a bad name is 400, an unusable file (empty, corrupt, encrypted, binary) is 422, an
oversized upload is 413 (middleware); in each case no row, no vectors and no file remain. A good
file gets a row (`pending`), is indexed on the ingest worker (`processing`, with `pages_done` /
`pages_total` and `chunks_done` / `chunks_total`), and the response comes once it is searchable
(201, `ready`) or after a few seconds (202, `pending` or `processing`: poll `GET /api/documents/{id}`).
Uploading the same bytes under the same name again returns the existing document (200).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, UploadFile, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, get_owned
from app.db.models import Document
from app.services.retrieval import RetrievalService, retrieval_service
from tools.retrieval import DocumentError, DocumentTooLarge
from tools.retrieval.parsing import parse_document

router = APIRouter(tags=["documents"])
Retrieval = Annotated[RetrievalService, Depends(retrieval_service)]
MAX_NAME_CHARS = 255


class DocumentOut(BaseModel):
    id: str
    filename: str
    status: str = Field(description="pending (queued), processing (being indexed), ready or failed (see error)")
    error: str | None
    size_bytes: int
    n_chunks: int
    n_pages: int | None
    n_tokens: int | None
    kind: str | None
    pages_done: int | None = Field(description="pages indexed so far; null for documents without pages")
    pages_total: int | None
    chunks_done: int
    chunks_total: int | None = Field(description="null until the document has been chunked")
    created_at: datetime


class PassageOut(BaseModel):
    document_id: str
    chunk_id: str
    filename: str
    text: str
    page: int | None
    section: str | None


class SearchResult(BaseModel):
    document_id: str
    chunk_id: str
    filename: str
    text: str
    score: float
    page: int | None
    section: str | None


class SearchOut(BaseModel):
    results: list[SearchResult]


def _progress(d: Document) -> dict[str, int | None]:
    """Ingestion progress: as last reported while indexing, complete when ready."""
    if d.status == "ready":
        return {"pages_done": d.n_pages, "pages_total": d.n_pages, "chunks_done": d.n_chunks, "chunks_total": d.n_chunks}
    reported = d.meta.get("progress") or {}
    return {"pages_done": reported.get("pages_done", 0 if d.n_pages is not None else None), "pages_total": d.n_pages,
            "chunks_done": reported.get("chunks_done", 0), "chunks_total": reported.get("chunks_total")}


def _out(d: Document) -> DocumentOut:
    return DocumentOut(
        id=d.id, filename=d.filename, status=d.status, error=d.error, size_bytes=d.size_bytes,
        n_chunks=d.n_chunks, n_pages=d.n_pages, n_tokens=d.meta.get("n_tokens"), kind=d.meta.get("kind"),
        created_at=d.created_at, **_progress(d),
    )


def clean_filename(raw: str | None) -> str:
    """The upload's file name, or 400 when it is missing or could name a path."""
    name = (raw or "").strip()
    if not name:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the upload has no file name")
    if "/" in name or "\\" in name or ".." in name or any(ord(ch) < 32 for ch in name) or len(name) > MAX_NAME_CHARS:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"invalid file name {name[:80]!r}: use a plain name without '/', '\\', '..' or control characters, "
            f"at most {MAX_NAME_CHARS} characters",
        )
    return name


def ready_document_ids(db: DbSession, owner_id: str) -> list[str]:
    """Ids of the owner's searchable documents, oldest first."""
    query = select(Document.id).where(Document.owner_id == owner_id, Document.status == "ready")
    return list(db.scalars(query.order_by(Document.created_at)))


@router.post("/api/documents", status_code=status.HTTP_201_CREATED, responses={200: {}, 202: {}, 400: {}, 413: {}, 422: {}})
def upload_document(file: UploadFile, user: CurrentUser, db: DbSession, retrieval: Retrieval, response: Response) -> DocumentOut:
    name = clean_filename(file.filename)
    data = file.file.read()
    sha256 = hashlib.sha256(data).hexdigest()
    same = db.scalar(select(Document).where(
        Document.owner_id == user.id, Document.sha256 == sha256, Document.filename == name, Document.status != "failed"
    ))
    if same is not None:
        response.status_code = status.HTTP_200_OK
        return _out(same)
    try:
        parsed = parse_document(name, data, retrieval.options.config.parse)
    except DocumentTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"cannot use {name!r}: {exc}") from exc
    except DocumentError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cannot use {name!r}: {exc}") from exc
    meta: dict[str, Any] = {"kind": parsed.kind}
    doc = Document(owner_id=user.id, filename=name, content_type=file.content_type or "application/octet-stream",
                   size_bytes=len(data), sha256=sha256, status="pending", n_pages=parsed.n_pages, meta=meta)
    db.add(doc)
    db.commit()
    try:
        retrieval.index_in_background(doc.id, name, sha256, parsed).result(timeout=retrieval.options.ingest_wait_s)
    except FutureTimeout:
        response.status_code = status.HTTP_202_ACCEPTED
    except Exception:
        pass  # the worker marked the row failed; the response says so
    db.refresh(doc)
    if doc.status == "failed":
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"indexing {name!r} failed: {doc.error}")
    return _out(doc)


@router.get("/api/documents")
def list_documents(user: CurrentUser, db: DbSession, retrieval: Retrieval) -> list[DocumentOut]:
    """The user's documents, newest first (depending on `retrieval` starts loading the models)."""
    rows = db.scalars(select(Document).where(Document.owner_id == user.id).order_by(Document.created_at.desc()))
    return [_out(d) for d in rows]


@router.get("/api/documents/{document_id}")
def get_document(document_id: str, user: CurrentUser, db: DbSession) -> DocumentOut:
    return _out(get_owned(db, Document, document_id, user))


@router.delete("/api/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(document_id: str, user: CurrentUser, db: DbSession, retrieval: Retrieval) -> None:
    doc = get_owned(db, Document, document_id, user)
    retrieval.index.delete(doc.id)
    db.delete(doc)
    db.commit()


@router.get("/api/documents/{document_id}/chunks/{chunk_id}")
def get_passage(document_id: str, chunk_id: str, user: CurrentUser, db: DbSession, retrieval: Retrieval) -> PassageOut:
    doc = get_owned(db, Document, document_id, user)
    chunk = retrieval.index.chunk(chunk_id)
    if chunk is None or chunk.document_id != doc.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"chunk {chunk_id} not found in document {document_id}")
    return PassageOut(document_id=doc.id, chunk_id=chunk.chunk_id, filename=chunk.filename, text=chunk.text,
                      page=chunk.page, section=chunk.section)


@router.get("/api/search")
def search(
    user: CurrentUser,
    db: DbSession,
    retrieval: Retrieval,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchOut:
    hits = retrieval.index.search(q, k=k, document_ids=ready_document_ids(db, user.id))
    return SearchOut(results=[
        SearchResult(document_id=h.document_id, chunk_id=h.chunk_id, filename=h.filename, text=h.text,
                     score=h.score, page=h.page, section=h.section)
        for h in hits
    ])
