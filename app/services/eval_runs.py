"""Benchmark runs as `eval_run` jobs (contract 4's Python side), durable across crashes.

Starting a run makes an EvalRun row (its `n_total` known at once) and a queued job. The job runs
the evals harness in VAR_DIR/evals/<run id>/; each graded sample becomes an EvalResult row the
moment it is stored ((run, problem, sample) is unique), and progress goes to the row in short
sessions. A resumed job (its process died) first rewrites the run directory's samples.jsonl from
those rows, so the harness redoes exactly the samples the database lacks: none is lost and none
is stored twice, whichever process resumes it. Cancelling stops the samples in flight.
"""
import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.backends.base import ModelBackend
from app.core.config import Settings
from app.db.models import EvalResult, EvalRun, JobStatus, User, utcnow
from app.services.jobs import JobContext, JobRunner
from evals.datasets import PROBLEM_COUNTS
from evals.execution import ExecConfig
from evals.generation import EndpointConfig
from evals.harness import RunConfig, run_benchmark
from evals.store import SAMPLES_FILE

log = logging.getLogger("app.eval_runs")
KIND = "eval_run"
TERMINAL = {"done", "failed", "cancelled"}


class EvalRuns:
    """The eval-run service: create and cancel runs; the `eval_run` job handler."""

    kind = KIND

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], backend: ModelBackend) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.max_workers = settings.job_eval_workers

    # -- what routes call ------------------------------------------------------------------
    def create(self, db: Session, jobs: JobRunner, user: User, benchmark: str, params: dict[str, Any]) -> EvalRun:
        limit = params.get("limit")
        n_problems = min(PROBLEM_COUNTS[benchmark], limit or PROBLEM_COUNTS[benchmark])
        run = EvalRun(owner_id=user.id, benchmark=benchmark, model=self.backend.model_name, params=params,
                      n_total=n_problems * params.get("samples", 1))
        db.add(run)
        db.flush()
        jobs.enqueue(db, KIND, run.id, user.id)
        db.commit()
        jobs.wake()
        return run

    def cancel(self, db: Session, jobs: JobRunner, run: EvalRun) -> EvalRun:
        """Samples in flight are abandoned; those graded so far are kept."""
        return jobs.cancel_and_wait(db, KIND, run, TERMINAL)

    # -- the job ---------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        with self.sessions() as db:
            run = db.get(EvalRun, ctx.subject_id)
            if run is None or run.status in TERMINAL:
                return
            run.status, run.out_dir = "running", str(self.settings.var_dir / "evals" / run.id)
            db.commit()
            params, benchmark, model = dict(run.params), run.benchmark, run.model
            stored = _stored_samples(db, run.id)
        out_dir = Path(self.settings.var_dir / "evals" / ctx.subject_id)
        _restore_samples(out_dir, stored)
        endpoint = EndpointConfig(base_url=self.backend.base_url, model=model, api_key=self.backend.api_key or "EMPTY",
                                  concurrency=params.get("concurrency", 4))
        config = RunConfig(benchmark=benchmark, endpoint=endpoint, out_dir=out_dir, samples=params.get("samples", 1),
                           limit=params.get("limit"),
                           # HumanEval+ expected outputs are computed once, not per run
                           exec=ExecConfig(cache_dir=self.settings.var_dir / "evals-cache"))
        summary = run_benchmark(config, on_sample=lambda sample: self._record(ctx.subject_id, sample), stop=ctx.stop)
        ctx.check()
        with self.sessions() as db:
            run = db.get(EvalRun, ctx.subject_id)
            run.metrics, run.n_done = summary["metrics"], summary["n_samples"]
            run.status = "done" if summary["complete"] else "failed"
            run.error = None if summary["complete"] else "; ".join(summary["generation_errors"]) or "incomplete"
            run.finished_at = utcnow()
            db.commit()

    def finish(self, subject_id: str, status: JobStatus, error: str | None) -> None:
        with self.sessions() as db:
            run = db.get(EvalRun, subject_id)
            if run is not None and run.status not in TERMINAL:
                run.status, run.error, run.finished_at = status.value, error, utcnow()
                db.commit()

    def _record(self, run_id: str, sample: dict) -> None:
        """Store one graded sample and the run's progress (a short session of its own)."""
        with self.sessions() as db:
            db.add(EvalResult(run_id=run_id, problem_id=sample["problem_id"], sample_index=sample["sample_index"],
                              passed=bool(sample["passed"]), completion=sample.get("completion", ""),
                              detail={k: v for k, v in sample.items() if k not in ("completion", "passed")}))
            try:
                db.commit()
            except IntegrityError:  # already stored by an earlier attempt
                db.rollback()
            run = db.get(EvalRun, run_id)
            run.n_done = db.scalar(select(func.count()).select_from(EvalResult).where(EvalResult.run_id == run_id))
            db.commit()


def _stored_samples(db: Session, run_id: str) -> list[dict]:
    rows = db.scalars(select(EvalResult).where(EvalResult.run_id == run_id)).all()
    return [{**r.detail, "problem_id": r.problem_id, "sample_index": r.sample_index, "passed": r.passed,
             "completion": r.completion} for r in rows]


def _restore_samples(out_dir: Path, samples: list[dict]) -> None:
    """Make the run directory's samples.jsonl hold exactly the samples the database has."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (SAMPLES_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples), encoding="utf-8")
    os.replace(tmp, out_dir / SAMPLES_FILE)
