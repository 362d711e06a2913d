"""Coding-agent runs: start one on a workspace, follow its steps (SSE), see what a paused
dangerous tool call would change (`GET .../approval`: diffs), approve or deny it, cancel a run.
Each user sees only their own runs and workspaces."""
import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import AppSettings, CurrentUser, DbSession, get_owned
from app.db.models import AgentRun, AgentStep, utcnow
from app.services.agent_runs import TERMINAL, SeedError, workspace_dir
from app.services.approval_preview import preview_calls

router = APIRouter(prefix="/api/agent-runs", tags=["agent runs"])
CANCEL_WAIT_S = 10.0


class NewAgentRun(BaseModel):
    task: str = Field(min_length=1, max_length=20_000)
    workspace: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                           description="name of one of your workspaces (created if new)")
    files: dict[str, str] = Field(default_factory=dict, description="files to put in the workspace first")
    max_steps: int = Field(30, ge=1, le=200)


class Decision(BaseModel):
    approved: bool


class StepOut(BaseModel):
    seq: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


class AgentRunOut(BaseModel):
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


def _out(run: AgentRun, workspace: str) -> AgentRunOut:
    return AgentRunOut(id=run.id, task=run.task, workspace=workspace, model=run.model, status=run.status,
                       pending_interrupt=run.pending_interrupt, result=run.result, error=run.error,
                       created_at=run.created_at, finished_at=run.finished_at)


def _name(run: AgentRun) -> str:
    return run.workspace.rsplit("/", 1)[-1]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_run(body: NewAgentRun, request: Request, user: CurrentUser, db: DbSession,
              settings: AppSettings) -> AgentRunOut:
    root = workspace_dir(settings, user.id, body.workspace)
    try:
        request.app.state.agent_runner.seed(root, body.files)
    except SeedError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    backend = request.app.state.backend
    run = AgentRun(owner_id=user.id, task=body.task, workspace=str(root.resolve()), model=backend.model_name,
                   max_steps=body.max_steps)
    db.add(run)
    db.commit()
    request.app.state.agent_runner.start(run.id, body.task)
    return _out(run, body.workspace)


@router.get("")
def list_runs(user: CurrentUser, db: DbSession) -> list[AgentRunOut]:
    runs = db.scalars(select(AgentRun).where(AgentRun.owner_id == user.id).order_by(AgentRun.created_at.desc()))
    return [_out(r, _name(r)) for r in runs]


@router.get("/{run_id}")
def get_run(run_id: str, user: CurrentUser, db: DbSession) -> AgentRunOut:
    run = get_owned(db, AgentRun, run_id, user)
    return _out(run, _name(run))


@router.get("/{run_id}/steps")
def list_steps(run_id: str, user: CurrentUser, db: DbSession, after: int = 0) -> list[StepOut]:
    get_owned(db, AgentRun, run_id, user)
    steps = db.scalars(select(AgentStep).where(AgentStep.run_id == run_id, AgentStep.seq > after)
                       .order_by(AgentStep.seq))
    return [StepOut(seq=s.seq, kind=s.kind, data=s.data, created_at=s.created_at) for s in steps]


@router.get("/{run_id}/events")
async def stream_steps(run_id: str, request: Request, user: CurrentUser, after: int = 0) -> StreamingResponse:
    """Server-sent events: one `data: {step}` per step, until the run finishes or pauses for approval."""
    sessions = request.app.state.sessionmaker
    with sessions() as db:
        get_owned(db, AgentRun, run_id, user)

    async def events():
        last = after
        while not await request.is_disconnected():
            with sessions() as db:
                steps = db.scalars(select(AgentStep).where(AgentStep.run_id == run_id, AgentStep.seq > last)
                                   .order_by(AgentStep.seq)).all()
                run_status = db.get(AgentRun, run_id).status
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


@router.post("/{run_id}/cancel")
def cancel_run(run_id: str, request: Request, user: CurrentUser, db: DbSession) -> AgentRunOut:
    """Stop a run: a paused or queued one at once, a running one at its next model token (waited for
    up to CANCEL_WAIT_S). A finished run is returned as it is."""
    run = get_owned(db, AgentRun, run_id, user)
    if run.status not in TERMINAL:
        request.app.state.agent_runner.cancel(run.id)
        if run.status in ("queued", "awaiting_approval"):
            run.status, run.pending_interrupt, run.finished_at = "cancelled", None, utcnow()
            db.commit()
        deadline = time.monotonic() + CANCEL_WAIT_S
        while run.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.1)
            db.refresh(run)
    return _out(run, _name(run))


@router.post("/{run_id}/approval", status_code=status.HTTP_202_ACCEPTED)
def decide(run_id: str, body: Decision, request: Request, user: CurrentUser, db: DbSession) -> AgentRunOut:
    """Approve or deny the tool calls a paused run waits on; the run then continues."""
    run = get_owned(db, AgentRun, run_id, user)
    if run.status != "awaiting_approval":
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} is {run.status}, not awaiting approval")
    run.status = "running"
    db.commit()
    request.app.state.agent_runner.decide(run.id, body.approved)
    return _out(run, _name(run))
