"""Benchmark runs through the evals harness (contract 4's Python side), one worker thread each.

The harness writes VAR_DIR/evals/<run id>/ (summary.json, samples.jsonl; resumable); progress
goes to the EvalRun row as it happens and the per-sample verdicts become EvalResult rows at the end.
"""
import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from app.backends.base import ModelBackend
from app.core.config import Settings
from app.db.models import EvalResult, EvalRun, utcnow
from app.services.cancellation import Cancellations, RunCancelled
from evals.execution import ExecConfig
from evals.generation import EndpointConfig
from evals.harness import RunConfig, run_benchmark
from evals.store import load_run

log = logging.getLogger("app.eval_runs")


class EvalRunner:
    """Runs benchmarks against the platform's model backend."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], backend: ModelBackend) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.cancellations = Cancellations()

    def start(self, run_id: str) -> None:
        threading.Thread(target=self._run, args=(run_id,), daemon=True, name=f"eval {run_id}").start()

    def cancel(self, run_id: str) -> None:
        """Ask a run to stop; it ends `cancelled` when its next sample is graded."""
        self.cancellations.cancel(run_id)

    def _run(self, run_id: str) -> None:
        with self.sessions() as db:
            run = db.get(EvalRun, run_id)
            run.status, run.out_dir = "running", str(self.settings.var_dir / "evals" / run_id)
            db.commit()

            def progress(done: int, total: int) -> None:
                run.n_done, run.n_total = done, total
                db.commit()
                self.cancellations.check(run_id)

            try:
                self.cancellations.check(run_id)
                endpoint = EndpointConfig(base_url=self.backend.base_url, model=run.model,
                                          api_key=self.backend.api_key or "EMPTY",
                                          concurrency=run.params.get("concurrency", 4))
                config = RunConfig(benchmark=run.benchmark, endpoint=endpoint, out_dir=run.out_dir,
                                   samples=run.params.get("samples", 1), limit=run.params.get("limit"),
                                   # HumanEval+ expected outputs are computed once, not per run
                                   exec=ExecConfig(cache_dir=self.settings.var_dir / "evals-cache"))
                summary = run_benchmark(config, progress)
                for s in load_run(run.out_dir)["samples"]:
                    db.add(EvalResult(run_id=run.id, problem_id=s["problem_id"], sample_index=s["sample_index"],
                                      passed=bool(s["passed"]), completion=s.get("completion", ""),
                                      detail={k: v for k, v in s.items() if k not in ("completion", "passed")}))
                run.metrics, run.n_total = summary["metrics"], summary["n_problems"] * config.samples
                run.n_done = summary["n_samples"]
                run.status = "done" if summary["complete"] else "failed"
                run.error = None if summary["complete"] else "; ".join(summary["generation_errors"]) or "incomplete"
            except RunCancelled:
                db.rollback()
                run.status = "cancelled"
            except Exception as exc:  # noqa: BLE001 - the run records why it failed
                log.exception("eval run failed", extra={"run_id": run_id})
                db.rollback()
                run.status, run.error = "failed", f"{exc.__class__.__name__}: {exc}"
            run.finished_at = utcnow()
            db.commit()
