"""Question answering over the user's documents (contract 7): `POST /api/qa`.

Body: `{"question", "document_ids" (default: all the user's ready documents; `[]`: plain chat
with the model, no documents), "stream", "conversation_id" (continue a conversation; default: a
new one)}`. Without `stream` the answer comes back as JSON: `answer`, `citations` (each with
`exists` and the cited passage), `ending` ("complete", or "loop" when the model fell into a loop
and was cut), `conversation_id`, `message_id`. With `"stream": true` it is Server-Sent Events:
`conversation`, `context`, `token`... , `citations`, then `done` (or `error`). Closing the stream
(a Stop button) stops the model; the answer so far is kept with ending "stopped". The question
and the answer are kept as messages of the conversation; a failed question is not (qa_turns.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from agents.docqa import DocQAAgent, QuestionTooLong
from agents.docqa.graph import citation_dict
from agents.model_client import ModelError
from app.api.deps import AppSettings, CurrentUser, DbSession, get_owned
from app.api.routes.documents import ready_document_ids
from app.db.models import Conversation, Document, User
from app.services.qa_turns import Turn, forget_turn, save_answer, start_turn
from app.services.retrieval import retrieval_service

router = APIRouter(tags=["qa"])
log = logging.getLogger("app.qa")


class QARequest(BaseModel):
    question: str = Field(min_length=1, max_length=8000)
    document_ids: list[str] | None = Field(None, max_length=200)
    stream: bool = False
    conversation_id: str | None = None


class QAResponse(BaseModel):
    answer: str
    citations: list[dict[str, Any]]
    ending: str
    conversation_id: str
    message_id: str | None


def _documents(db: Session, user: User, requested: list[str] | None) -> list[str]:
    """The document ids to answer from: each owned (404) and ready (409); None = all ready ones (400 if none)."""
    if requested is None:
        ids = ready_document_ids(db, user.id)
        if not ids:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                "no documents to answer from: upload one first, or send document_ids [] to chat")
        return ids
    ids = []
    for doc_id in dict.fromkeys(requested):
        doc = get_owned(db, Document, doc_id, user)
        if doc.status != "ready":
            raise HTTPException(status.HTTP_409_CONFLICT, f"document {doc_id} is {doc.status}, not ready")
        ids.append(doc.id)
    return ids


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


@router.post("/api/qa", response_model=QAResponse, responses={200: {"content": {"text/event-stream": {}}}})
def ask(body: QARequest, request: Request, user: CurrentUser, db: DbSession, settings: AppSettings):
    document_ids = _documents(db, user, body.document_ids)
    conversation = get_owned(db, Conversation, body.conversation_id, user) if body.conversation_id else None
    turn = start_turn(db, conversation, user.id, body.question, document_ids)
    agent = retrieval_service(request).qa_agent(request.app.state.backend, settings.model_timeout_s)
    sessions = request.app.state.sessionmaker
    if not body.stream:
        try:
            result = agent.run(body.question, document_ids, turn.history)
        except (ModelError, QuestionTooLong) as exc:
            forget_turn(sessions, turn)
            code = status.HTTP_502_BAD_GATEWAY if isinstance(exc, ModelError) else status.HTTP_422_UNPROCESSABLE_CONTENT
            raise HTTPException(code, str(exc)) from exc
        citations = [citation_dict(c) for c in result.citations]
        return QAResponse(answer=result.answer, citations=citations, ending=result.ending,
                          conversation_id=turn.conversation_id,
                          message_id=save_answer(sessions, turn, result.answer, citations))
    return StreamingResponse(_events(agent, body.question, document_ids, turn, sessions),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _events(agent: DocQAAgent, question: str, document_ids: list[str], turn: Turn, sessions) -> AsyncIterator[str]:
    """The agent runs on its own thread (it saves the answer even if the client has gone); closing
    this stream sets `stop`, which ends the answer at the next token."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    stop = threading.Event()

    def put(event: dict[str, Any] | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:  # the event loop has closed (shutdown)
            stop.set()

    def work() -> None:
        try:
            for event in agent.stream(question, document_ids, turn.history, stop):
                if event["type"] == "done":
                    event["message_id"] = save_answer(sessions, turn, event["answer"], event["citations"])
                    event["conversation_id"] = turn.conversation_id
                put(event)
        except (ModelError, QuestionTooLong) as exc:
            forget_turn(sessions, turn)
            put({"type": "error", "detail": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the client gets a message, the log the traceback
            log.exception("question failed", extra={"conversation_id": turn.conversation_id})
            forget_turn(sessions, turn)
            put({"type": "error", "detail": f"the question failed: {type(exc).__name__}"})
        finally:
            put(None)

    threading.Thread(target=work, daemon=True, name=f"qa {turn.conversation_id}").start()
    try:
        yield _sse({"type": "conversation", "conversation_id": turn.conversation_id})
        while (event := await queue.get()) is not None:
            yield _sse(event)
    finally:
        stop.set()
