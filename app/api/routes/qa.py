"""Question answering over the user's documents (contract 7): `POST /api/qa`.

Body: `{"question", "document_ids" (default: all the user's ready documents; `[]`: plain chat
with the model, no documents), "stream", "conversation_id" (continue a conversation; default: a
new one)}`. Without `stream` the answer comes back as JSON: `answer`, `citations` (each with
`exists` and the cited passage), `ending` ("complete", or "loop" when the model fell into a loop
and was cut), `conversation_id`, `message_id`. With `"stream": true` it is Server-Sent Events:
`conversation`, `context`, `token`... , `citations`, then `done` (or `error`). Closing the stream
(a Stop button) stops the model; the answer so far is kept with ending "stopped". The question
and the answer are kept as messages of the conversation; a failed question is not (services/qa.py).
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, DbSession
from app.services.qa import QA
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
    ending: str
    conversation_id: str
    message_id: str | None


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


@router.post("/api/qa", response_model=QAResponse, responses={200: {"content": {"text/event-stream": {}}}})
def ask(body: QARequest, request: Request, user: CurrentUser, db: DbSession):
    retrieval_service(request)  # the index starts loading if this is its first use
    qa: QA = request.app.state.qa
    turn, document_ids = qa.start(db, user, body.question, body.document_ids, body.conversation_id)
    if not body.stream:
        return QAResponse(**qa.answer(turn, body.question, document_ids))

    async def events():
        async for event in qa.events(turn, body.question, document_ids):
            yield _sse(event)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
