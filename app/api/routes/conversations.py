"""Conversations and their messages (QA history): list, create, read, rename, delete; each user sees only their own."""
from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, Page, get_owned
from app.db.models import Conversation, Document

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


class NewConversation(BaseModel):
    title: str = Field("", max_length=500)
    document_ids: list[str] = Field(default_factory=list, max_length=200)


class ConversationUpdate(BaseModel):
    title: str = Field(min_length=1, max_length=500)


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    content: str
    citations: list[Any]
    created_at: datetime


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    document_ids: list[str]
    created_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


@router.get("")
def list_conversations(user: CurrentUser, db: DbSession, page: Page) -> list[ConversationOut]:
    """The user's conversations, newest first (`limit`, `offset`)."""
    query = select(Conversation).where(Conversation.owner_id == user.id).order_by(Conversation.created_at.desc())
    return [ConversationOut.model_validate(c) for c in db.scalars(page.apply(query))]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_conversation(body: NewConversation, user: CurrentUser, db: DbSession) -> ConversationOut:
    """404 for a document id that is not one of the user's, as every other route answers."""
    for document_id in body.document_ids:
        get_owned(db, Document, document_id, user)
    conv = Conversation(owner_id=user.id, title=body.title, document_ids=body.document_ids)
    db.add(conv)
    db.commit()
    return ConversationOut.model_validate(conv)


@router.get("/{conversation_id}")
def get_conversation(conversation_id: str, user: CurrentUser, db: DbSession) -> ConversationDetail:
    return ConversationDetail.model_validate(get_owned(db, Conversation, conversation_id, user))


@router.patch("/{conversation_id}")
def rename_conversation(conversation_id: str, body: ConversationUpdate, user: CurrentUser,
                        db: DbSession) -> ConversationOut:
    """Rename a conversation (the title defaults to its first question)."""
    conv = get_owned(db, Conversation, conversation_id, user)
    conv.title = body.title.strip() or conv.title
    db.commit()
    return ConversationOut.model_validate(conv)


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(conversation_id: str, user: CurrentUser, db: DbSession) -> None:
    db.delete(get_owned(db, Conversation, conversation_id, user))
    db.commit()
