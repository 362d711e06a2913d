"""One question and its answer as conversation messages.

The question is stored when asked (so a follow-up sees it); the answer when it is complete or
stopped. A question that fails (the model is unreachable, it does not fit the window) is
forgotten: its message is deleted, and so is the conversation when this question created it, so
a failure never leaves an empty or unanswered conversation behind.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Conversation, Message

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
