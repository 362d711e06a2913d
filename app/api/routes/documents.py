"""Documents (contract 7): upload, list, get, delete, read a passage, and search.

`POST /api/documents` (multipart field `file`) validates the name and the content before anything
is stored: a bad name is 400, an unusable file (empty, corrupt, encrypted, binary) is 422, an
oversized upload is 413 (middleware); in each case no row, no vectors and no file remain. A good
file gets a row (`pending`), is indexed on the ingest worker (`processing`, with `pages_done` /
`pages_total` and `chunks_done` / `chunks_total`), and the response comes once it is searchable
(201, `ready`) or after a few seconds (202, `pending` or `processing`: poll `GET /api/documents/{id}`).
Uploading the same bytes under the same name again returns the existing document (200). Indexing
is a job (app/services/documents.py): it survives a crash of the app and resumes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, Page, get_owned
from app.db.models import Document
from app.services.documents import Documents
from app.services.retrieval import retrieval_service


def documents_service(request: Request) -> Documents:
    """The app's document service (its index starts loading in the background on first use)."""
    retrieval_service(request)
    return request.app.state.documents


router = APIRouter(tags=["documents"])
Docs = Annotated[Documents, Depends(documents_service)]


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
    model_config = ConfigDict(from_attributes=True)

    document_id: str
    chunk_id: str
    filename: str
    text: str
    page: int | None
    section: str | None


class SearchResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


@router.post("/api/documents", status_code=status.HTTP_201_CREATED, responses={200: {}, 202: {}, 400: {}, 413: {}, 422: {}})
def upload_document(file: UploadFile, request: Request, user: CurrentUser, db: DbSession, documents: Docs,
                    response: Response) -> DocumentOut:
    doc, created = documents.upload(db, request.app.state.jobs, user, file.filename, file.content_type,
                                    file.file.read())
    if not created:
        response.status_code = status.HTTP_200_OK
    elif doc.status != "ready":
        response.status_code = status.HTTP_202_ACCEPTED
    return _out(doc)


@router.get("/api/documents")
def list_documents(user: CurrentUser, db: DbSession, documents: Docs, page: Page) -> list[DocumentOut]:
    """The user's documents, newest first (`limit`, `offset`)."""
    query = select(Document).where(Document.owner_id == user.id).order_by(Document.created_at.desc())
    return [_out(d) for d in db.scalars(page.apply(query))]


@router.get("/api/documents/{document_id}")
def get_document(document_id: str, user: CurrentUser, db: DbSession) -> DocumentOut:
    return _out(get_owned(db, Document, document_id, user))


@router.delete("/api/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(document_id: str, request: Request, user: CurrentUser, db: DbSession, documents: Docs) -> None:
    documents.delete(db, request.app.state.jobs, get_owned(db, Document, document_id, user))


@router.get("/api/documents/{document_id}/chunks/{chunk_id}")
def get_passage(document_id: str, chunk_id: str, user: CurrentUser, db: DbSession, documents: Docs) -> PassageOut:
    return PassageOut.model_validate(documents.passage(get_owned(db, Document, document_id, user), chunk_id))


@router.get("/api/search")
def search(
    user: CurrentUser,
    db: DbSession,
    documents: Docs,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchOut:
    return SearchOut(results=[SearchResult.model_validate(h) for h in documents.search(db, user, q, k)])
