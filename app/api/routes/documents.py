"""Minimal document listing (owner-scoped) until the retrieval issue's upload/search routes
replace this module: `GET /api/documents`, `GET /api/documents/{id}`."""
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, get_owned
from app.db.models import Document

router = APIRouter(prefix="/api/documents", tags=["documents"])


class DocumentOut(BaseModel):
    id: str
    filename: str
    status: str
    size_bytes: int
    n_chunks: int
    created_at: datetime


def _out(d: Document) -> DocumentOut:
    return DocumentOut(id=d.id, filename=d.filename, status=d.status, size_bytes=d.size_bytes,
                       n_chunks=d.n_chunks, created_at=d.created_at)


@router.get("")
def list_documents(user: CurrentUser, db: DbSession) -> list[DocumentOut]:
    rows = db.scalars(select(Document).where(Document.owner_id == user.id).order_by(Document.created_at.desc()))
    return [_out(d) for d in rows]


@router.get("/{document_id}")
def get_document(document_id: str, user: CurrentUser, db: DbSession) -> DocumentOut:
    return _out(get_owned(db, Document, document_id, user))
