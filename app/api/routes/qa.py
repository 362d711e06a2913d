"""Question answering over the user's documents (contract 7): `POST /api/qa`.

Body: `{"question", "document_ids" (default: all the user's ready documents), "stream",
"conversation_id" (continue a conversation; default: a new one)}`. Without `stream` the answer
comes back as JSON: `answer`, `citations` (each with `exists` and the cited passage),
`conversation_id`, `message_id`. With `"stream": true` it is Server-Sent Events:
`conversation`, `context`, `token`... , `citations`, then `done` (or `error`). The question and
the answer are kept as messages of the conversation.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from agents.docqa.graph import citation_dict
from agents.model_client import ModelError
from app.api.deps import AppSettings, CurrentUser, DbSession, get_owned
from app.api.routes.documents import ready_document_ids
from app.db.models import Conversation, Document, Message, User
from app.services.retrieval import retrieval_service

router = APIRouter(tags=["qa"])


class QARequest(BaseModel):
    question: str = Field(min_length=1, max_length=8000)
    document_ids: list[str] | None = Field(None, max_length=200)
    stream: bool = False
    conversation_id: str | None = None


class QAResponse(BaseModel):
    answer: str
    citations: list[dict[str, Any]]
    conversation_id: str
    message_id: str


def _documents(db: Session, user: User, requested: list[str] | None) -> list[str]:
    """The document ids to answer from: each owned (404) and ready (409); at least one (400)."""
    if requested is None:
        ids = ready_document_ids(db, user.id)
    else:
        ids = []
        for doc_id in dict.fromkeys(requested):
            doc = get_owned(db, Document, doc_id, user)
            if doc.status != "ready":
                raise HTTPException(status.HTTP_409_CONFLICT, f"document {doc_id} is {doc.status}, not ready")
            ids.append(doc.id)
    if not ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no documents to answer from: upload one first")
    return ids


def _conversation(db: Session, user: User, body: QARequest, document_ids: list[str]) -> Conversation:
    if body.conversation_id:
        return get_owned(db, Conversation, body.conversation_id, user)
    conversation = Conversation(owner_id=user.id, title=body.question[:200], document_ids=document_ids)
    db.add(conversation)
    return conversation


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


@router.post("/api/qa", response_model=QAResponse, responses={200: {"content": {"text/event-stream": {}}}})
def ask(body: QARequest, request: Request, user: CurrentUser, db: DbSession, settings: AppSettings):
    document_ids = _documents(db, user, body.document_ids)
    conversation = _conversation(db, user, body, document_ids)
    history = [{"role": m.role, "content": m.content} for m in conversation.messages if m.role in ("user", "assistant")]
    db.add(Message(conversation=conversation, role="user", content=body.question))
    db.commit()
    conversation_id = conversation.id
    agent = retrieval_service(request).qa_agent(request.app.state.backend, settings.model_timeout_s)
    sessions = request.app.state.sessionmaker

    def save_answer(answer: str, citations: list[dict[str, Any]]) -> str:
        with sessions() as session:
            message = Message(conversation_id=conversation_id, role="assistant", content=answer, citations=citations)
            session.add(message)
            session.commit()
            return message.id

    if not body.stream:
        try:
            result = agent.run(body.question, document_ids, history)
        except ModelError as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
        citations = [citation_dict(c) for c in result.citations]
        message_id = save_answer(result.answer, citations)
        return QAResponse(answer=result.answer, citations=citations, conversation_id=conversation_id, message_id=message_id)

    def events() -> Iterator[str]:
        yield _sse({"type": "conversation", "conversation_id": conversation_id})
        try:
            for event in agent.stream(body.question, document_ids, history):
                if event["type"] == "done":
                    event["message_id"] = save_answer(event["answer"], event["citations"])
                    event["conversation_id"] = conversation_id
                yield _sse(event)
        except ModelError as exc:
            yield _sse({"type": "error", "detail": str(exc)})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
