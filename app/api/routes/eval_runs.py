"""Benchmark runs: start, progress (`n_total` known from the start), per-sample results, a
comparison of runs, and cancel."""
import time
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import CurrentUser, DbSession, get_owned
from app.db.models import EvalResult, EvalRun, utcnow
from evals.datasets import load_problems

router = APIRouter(prefix="/api/eval-runs", tags=["eval runs"])
TERMINAL = {"done", "failed", "cancelled"}
CANCEL_WAIT_S = 10.0


class NewEvalRun(BaseModel):
    benchmark: Literal["humaneval", "humaneval_plus", "math500"]
    limit: int | None = Field(None, ge=1, description="first N problems only")
    samples: int = Field(1, ge=1, le=100)
    concurrency: int = Field(4, ge=1, le=64)


class EvalRunOut(BaseModel):
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
    problem_id: str
    sample_index: int
    passed: bool
    completion: str


def _out(r: EvalRun) -> EvalRunOut:
    return EvalRunOut(id=r.id, benchmark=r.benchmark, model=r.model, params=r.params, status=r.status,
                      n_done=r.n_done, n_total=r.n_total, metrics=r.metrics, error=r.error,
                      created_at=r.created_at, finished_at=r.finished_at)


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_run(body: NewEvalRun, request: Request, user: CurrentUser, db: DbSession) -> EvalRunOut:
    n_problems = len(load_problems(body.benchmark)[: body.limit])
    run = EvalRun(owner_id=user.id, benchmark=body.benchmark, model=request.app.state.backend.model_name,
                  params=body.model_dump(exclude={"benchmark"}), n_total=n_problems * body.samples)
    db.add(run)
    db.commit()
    request.app.state.eval_runner.start(run.id)
    return _out(run)


@router.get("")
def list_runs(user: CurrentUser, db: DbSession) -> list[EvalRunOut]:
    runs = db.scalars(select(EvalRun).where(EvalRun.owner_id == user.id).order_by(EvalRun.created_at.desc()))
    return [_out(r) for r in runs]


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
    return {"benchmark": runs[0].benchmark, "runs": [_out(r).model_dump() for r in runs], "differing": differing}


@router.get("/{run_id}")
def get_run(run_id: str, user: CurrentUser, db: DbSession) -> EvalRunOut:
    return _out(get_owned(db, EvalRun, run_id, user))


@router.post("/{run_id}/cancel")
def cancel_run(run_id: str, request: Request, user: CurrentUser, db: DbSession) -> EvalRunOut:
    """Stop a run: a queued one at once, a running one when its next sample is graded (waited for
    up to CANCEL_WAIT_S). A finished run is returned as it is."""
    run = get_owned(db, EvalRun, run_id, user)
    if run.status not in TERMINAL:
        request.app.state.eval_runner.cancel(run.id)
        if run.status == "queued":
            run.status, run.finished_at = "cancelled", utcnow()
            db.commit()
        deadline = time.monotonic() + CANCEL_WAIT_S
        while run.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.1)
            db.refresh(run)
    return _out(run)


@router.get("/{run_id}/results")
def results(run_id: str, user: CurrentUser, db: DbSession, offset: int = Query(0, ge=0),
            limit: int = Query(100, ge=1, le=1000)) -> list[EvalResultOut]:
    get_owned(db, EvalRun, run_id, user)
    rows = db.scalars(select(EvalResult).where(EvalResult.run_id == run_id)
                      .order_by(EvalResult.problem_id, EvalResult.sample_index).offset(offset).limit(limit))
    return [EvalResultOut(problem_id=r.problem_id, sample_index=r.sample_index, passed=r.passed,
                          completion=r.completion) for r in rows]
