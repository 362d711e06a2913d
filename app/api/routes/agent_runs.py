"""Coding-agent runs: start one on a workspace, follow its steps (SSE), approve or deny a
paused dangerous tool call, cancel. Each user sees only their own runs and workspaces."""
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, Page, get_owned
from app.db.models import AgentRun, AgentStep
from app.services.agent_runs import TERMINAL
from app.services.approval_preview import preview_calls

router = APIRouter(prefix="/api/agent-runs", tags=["agent runs"])


class NewAgentRun(BaseModel):
    task: str = Field(min_length=1, max_length=20_000)
    workspace: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                           description="name of one of your workspaces (created if new)")
    files: dict[str, str] = Field(default_factory=dict, description="files to put in the workspace first")
    max_steps: int = Field(30, ge=1, le=200)


class Decision(BaseModel):
    approved: bool


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


class AgentRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    task: str
    workspace: str
    model: str
    status: str
    pending_interrupt: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @field_validator("workspace")
    @classmethod
    def _workspace_name(cls, path: str) -> str:
        """Rows keep the workspace's path; clients see its name."""
        return path.rsplit("/", 1)[-1]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_run(body: NewAgentRun, request: Request, user: CurrentUser, db: DbSession) -> AgentRunOut:
    """Queue a run on one of your workspaces (created if new), after putting `files` into it."""
    state = request.app.state
    run = state.agent_runs.create(db, state.jobs, user, body.task, body.workspace, body.files, body.max_steps)
    return AgentRunOut.model_validate(run)


@router.get("")
def list_runs(user: CurrentUser, db: DbSession, page: Page) -> list[AgentRunOut]:
    """The user's runs, newest first (`limit`, `offset`)."""
    query = select(AgentRun).where(AgentRun.owner_id == user.id).order_by(AgentRun.created_at.desc())
    return [AgentRunOut.model_validate(r) for r in db.scalars(page.apply(query))]


@router.get("/{run_id}")
def get_run(run_id: str, user: CurrentUser, db: DbSession) -> AgentRunOut:
    return AgentRunOut.model_validate(get_owned(db, AgentRun, run_id, user))


@router.get("/{run_id}/steps")
def list_steps(run_id: str, user: CurrentUser, db: DbSession, page: Page, after: int = 0) -> list[StepOut]:
    get_owned(db, AgentRun, run_id, user)
    query = select(AgentStep).where(AgentStep.run_id == run_id, AgentStep.seq > after).order_by(AgentStep.seq)
    return [StepOut.model_validate(s) for s in db.scalars(page.apply(query))]


@router.get("/{run_id}/events")
async def stream_steps(run_id: str, request: Request, user: CurrentUser, after: int = 0) -> StreamingResponse:
    """Server-sent events: one `data: {step}` per step, until the run finishes or pauses for approval."""
    sessions = request.app.state.sessionmaker
    with sessions() as db:
        get_owned(db, AgentRun, run_id, user)

    async def events():
        last = after
        while not await request.is_disconnected():
            with sessions() as db:  # the status first: steps recorded before it ended are then all seen
                run_status = db.get(AgentRun, run_id).status
                steps = db.scalars(select(AgentStep).where(AgentStep.run_id == run_id, AgentStep.seq > last)
                                   .order_by(AgentStep.seq)).all()
            for s in steps:
                last = s.seq
                yield f"data: {json.dumps({'seq': s.seq, 'kind': s.kind, 'data': s.data})}\n\n"
            if run_status in TERMINAL or run_status == "awaiting_approval":
                yield f"event: end\ndata: {json.dumps({'status': run_status})}\n\n"
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/{run_id}/approval")
def pending_approval(run_id: str, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """The calls a paused run waits on, each with the diff (or command) it would apply; 409 if not paused."""
    run = get_owned(db, AgentRun, run_id, user)
    if run.status != "awaiting_approval" or not run.pending_interrupt:
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} is {run.status}, not awaiting approval")
    return {"calls": preview_calls(Path(run.workspace), run.pending_interrupt["calls"])}


@router.post("/{run_id}/approval", status_code=status.HTTP_202_ACCEPTED)
def decide(run_id: str, body: Decision, request: Request, user: CurrentUser, db: DbSession) -> AgentRunOut:
    """Approve or deny the tool calls a paused run waits on; the run then continues."""
    run = get_owned(db, AgentRun, run_id, user)
    return AgentRunOut.model_validate(request.app.state.agent_runs.decide(db, request.app.state.jobs, run,
                                                                          body.approved))


@router.post("/{run_id}/cancel")
def cancel(run_id: str, request: Request, user: CurrentUser, db: DbSession) -> AgentRunOut:
    """Stop a run: a queued or paused one at once, a running one at its next model token (waited for
    a few seconds, so the answer usually says `cancelled`). A finished run is returned as it is."""
    run = get_owned(db, AgentRun, run_id, user)
    return AgentRunOut.model_validate(request.app.state.agent_runs.cancel(db, request.app.state.jobs, run))
