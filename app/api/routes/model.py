"""`GET /api/model`: the platform's model, its state and the budget a question gets (for the UI)."""
import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api.deps import CurrentUser
from app.services.retrieval import retrieval_service

router = APIRouter(tags=["model"])


class ModelOut(BaseModel):
    name: str
    backend: str
    state: str
    detail: str
    qa: dict[str, Any]


@router.get("/api/model")
async def model_info(request: Request, _user: CurrentUser) -> ModelOut:
    """Name and health of the model backend; `qa` is the window (and where it came from) and the
    answer reserve of the next question, read from the model's server while it is ready."""
    backend = request.app.state.backend
    state = await backend.status()
    qa: dict[str, Any] = {}
    if state.ready:
        qa = (await asyncio.to_thread(retrieval_service(request).qa_window, backend)).as_dict()
    return ModelOut(name=backend.model_name, backend=state.backend, state=state.state, detail=state.detail, qa=qa)
