"""Question answering (contract 7's `POST /api/qa`): which documents, the doc-QA agent, and the
conversation the question and its answer are kept in.

The question is stored when asked (so a follow-up sees it); the answer when it is complete or
stopped. A question that fails (the model is unreachable, it does not fit the window) is
forgotten: its message is deleted, and so is the conversation when this question created it, so
a failure never leaves an empty or unanswered conversation behind. A streamed answer runs the
agent on its own thread (it saves the answer even if the client has gone); closing the stream
sets `stop`, which ends the answer at the next token.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agents.docqa import DocQAAgent, QuestionTooLong
from agents.docqa.graph import citation_dict
from agents.model_client import ModelError
from app.backends.base import ModelBackend
from app.db.models import Conversation, Document, Message, User
from app.services.documents import Documents
from app.services.errors import Conflict, Invalid, NotFound, Unusable, Upstream
from app.services.retrieval import RetrievalService

log = logging.getLogger("app.qa")

TITLE_CHARS = 200


@dataclass(frozen=True)
class Turn:
    """The rows one question wrote: its conversation (new or not) and its message."""

    conversation_id: str
    question_id: str
    new_conversation: bool
    history: list[dict[str, str]]


def start_turn(db: Session, conversation: Conversation | None, owner_id: str, question: str,
               document_ids: list[str]) -> Turn:
    """Store the question in `conversation` (a new one titled by the question when None)."""
    new = conversation is None
    if conversation is None:
        conversation = Conversation(owner_id=owner_id, title=question[:TITLE_CHARS], document_ids=document_ids)
        db.add(conversation)
    else:
        conversation.document_ids = document_ids
    history = [{"role": m.role, "content": m.content} for m in conversation.messages if m.role in ("user", "assistant")]
    message = Message(conversation=conversation, role="user", content=question)
    db.add(message)
    db.commit()
    return Turn(conversation.id, message.id, new, history)


def save_answer(sessions: sessionmaker[Session], turn: Turn, answer: str, citations: list[dict[str, Any]]) -> str | None:
    """Store the answer; None (nothing stored) for an empty one, as when stopped before any token."""
    if not answer:
        return None
    with sessions() as db:
        message = Message(conversation_id=turn.conversation_id, role="assistant", content=answer, citations=citations)
        db.add(message)
        db.commit()
        return message.id


def forget_turn(sessions: sessionmaker[Session], turn: Turn) -> None:
    """Undo a failed question: its message, and its conversation if the question created it."""
    with sessions() as db:
        row = db.get(Conversation, turn.conversation_id) if turn.new_conversation else db.get(Message, turn.question_id)
        if row is not None:
            db.delete(row)
            db.commit()


class QA:
    """Answers questions with the doc-QA agent over the app's model backend."""

    def __init__(self, sessions: sessionmaker[Session], backend: ModelBackend, retrieval: RetrievalService,
                 documents: Documents, timeout_s: float) -> None:
        self.sessions = sessions
        self.backend = backend
        self.retrieval = retrieval
        self.documents = documents
        self.timeout_s = timeout_s

    def document_ids(self, db: Session, user: User, requested: list[str] | None) -> list[str]:
        """The documents to answer from: each owned (404) and ready (409); None = all ready ones
        (400 if there are none); [] = plain chat with the model."""
        if requested is None:
            ids = self.documents.ready_ids(db, user.id)
            if not ids:
                raise Invalid("no documents to answer from: upload one first, or send document_ids [] to chat")
            return ids
        ids = []
        for doc_id in dict.fromkeys(requested):
            doc = db.get(Document, doc_id)
            if doc is None or doc.owner_id != user.id:
                raise NotFound(f"document {doc_id} not found")
            if doc.status != "ready":
                raise Conflict(f"document {doc_id} is {doc.status}, not ready")
            ids.append(doc.id)
        return ids

    def start(self, db: Session, user: User, question: str, requested: list[str] | None,
              conversation_id: str | None) -> tuple[Turn, list[str]]:
        """Check the documents and the conversation, and store the question."""
        document_ids = self.document_ids(db, user, requested)
        conversation = None
        if conversation_id is not None:
            conversation = db.get(Conversation, conversation_id)
            if conversation is None or conversation.owner_id != user.id:
                raise NotFound(f"conversation {conversation_id} not found")
        return start_turn(db, conversation, user.id, question, document_ids), document_ids

    def answer(self, turn: Turn, question: str, document_ids: list[str]) -> dict[str, Any]:
        """The whole answer: `answer`, `citations`, `ending`, `conversation_id`, `message_id`."""
        try:
            result = self._agent().run(question, document_ids, turn.history)
        except ModelError as exc:
            forget_turn(self.sessions, turn)
            raise Upstream(str(exc)) from exc
        except QuestionTooLong as exc:
            forget_turn(self.sessions, turn)
            raise Unusable(str(exc)) from exc
        citations = [citation_dict(c) for c in result.citations]
        return {"answer": result.answer, "citations": citations, "ending": result.ending,
                "conversation_id": turn.conversation_id,
                "message_id": save_answer(self.sessions, turn, result.answer, citations)}

    async def events(self, turn: Turn, question: str, document_ids: list[str]) -> AsyncIterator[dict[str, Any]]:
        """The answer as events: `conversation`, `context`, `token`..., `citations`, then `done` or `error`."""
        agent = self._agent()
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
                        event["message_id"] = save_answer(self.sessions, turn, event["answer"], event["citations"])
                        event["conversation_id"] = turn.conversation_id
                    put(event)
            except (ModelError, QuestionTooLong) as exc:
                forget_turn(self.sessions, turn)
                put({"type": "error", "detail": str(exc)})
            except Exception as exc:  # noqa: BLE001 - the client gets a message, the log the traceback
                log.exception("question failed", extra={"conversation_id": turn.conversation_id})
                forget_turn(self.sessions, turn)
                put({"type": "error", "detail": f"the question failed: {type(exc).__name__}"})
            finally:
                put(None)

        threading.Thread(target=work, daemon=True, name=f"qa {turn.conversation_id}").start()
        try:
            yield {"type": "conversation", "conversation_id": turn.conversation_id}
            while (event := await queue.get()) is not None:
                yield event
        finally:
            stop.set()

    def _agent(self) -> DocQAAgent:
        return self.retrieval.qa_agent(self.backend, self.timeout_s)
