"""Benchmark runs: start, progress, cancel, per-sample results, and a comparison of runs."""
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, Page, get_owned
from app.db.models import EvalResult, EvalRun

router = APIRouter(prefix="/api/eval-runs", tags=["eval runs"])
TERMINAL = {"done", "failed", "cancelled"}


class NewEvalRun(BaseModel):
    benchmark: Literal["humaneval", "humaneval_plus", "math500"]
    limit: int | None = Field(None, ge=1, description="first N problems only")
    samples: int = Field(1, ge=1, le=100)
    concurrency: int = Field(4, ge=1, le=64)


class EvalRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    benchmark: str
    model: str
    params: dict[str, Any]
    status: str
    n_done: int
    n_total: int | None
    metrics: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class EvalResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    problem_id: str
    sample_index: int
    passed: bool
    completion: str


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_run(body: NewEvalRun, request: Request, user: CurrentUser, db: DbSession) -> EvalRunOut:
    """Queue a run; it starts when a worker is free (JOB_EVAL_WORKERS per app process)."""
    state = request.app.state
    run = state.eval_runs.create(db, state.jobs, user, body.benchmark, body.model_dump(exclude={"benchmark"}))
    return EvalRunOut.model_validate(run)


@router.get("")
def list_runs(user: CurrentUser, db: DbSession, page: Page) -> list[EvalRunOut]:
    """The user's runs, newest first (`limit`, `offset`)."""
    query = select(EvalRun).where(EvalRun.owner_id == user.id).order_by(EvalRun.created_at.desc())
    return [EvalRunOut.model_validate(r) for r in db.scalars(page.apply(query))]


@router.get("/compare")
def compare(user: CurrentUser, db: DbSession, ids: list[str] = Query(min_length=2)) -> dict[str, Any]:
    """Metrics side by side, and the problems whose first-sample verdict differs between runs."""
    runs = [get_owned(db, EvalRun, run_id, user) for run_id in ids]
    if len({r.benchmark for r in runs}) != 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "runs of different benchmarks cannot be compared")
    verdicts: dict[str, dict[str, bool]] = {}
    for r in runs:
        for res in db.scalars(select(EvalResult).where(EvalResult.run_id == r.id, EvalResult.sample_index == 0)):
            verdicts.setdefault(res.problem_id, {})[r.id] = res.passed
    differing = {pid: v for pid, v in sorted(verdicts.items()) if len(set(v.values())) > 1 or len(v) < len(runs)}
    return {"benchmark": runs[0].benchmark, "runs": [EvalRunOut.model_validate(r).model_dump() for r in runs],
            "differing": differing}


@router.get("/{run_id}")
def get_run(run_id: str, user: CurrentUser, db: DbSession) -> EvalRunOut:
    return EvalRunOut.model_validate(get_owned(db, EvalRun, run_id, user))


@router.post("/{run_id}/cancel")
def cancel_run(run_id: str, request: Request, user: CurrentUser, db: DbSession) -> EvalRunOut:
    """Stop a queued or running run (waited for a few seconds, so the answer usually says
    `cancelled`); the samples graded so far are kept. A finished run is returned as it is."""
    run = get_owned(db, EvalRun, run_id, user)
    return EvalRunOut.model_validate(request.app.state.eval_runs.cancel(db, request.app.state.jobs, run))


@router.get("/{run_id}/results")
def results(run_id: str, user: CurrentUser, db: DbSession, page: Page) -> list[EvalResultOut]:
    get_owned(db, EvalRun, run_id, user)
    query = select(EvalResult).where(EvalResult.run_id == run_id).order_by(EvalResult.problem_id,
                                                                           EvalResult.sample_index)
    return [EvalResultOut.model_validate(r) for r in db.scalars(page.apply(query))]
