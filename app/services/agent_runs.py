"""Coding-agent runs: each run is a LangGraph thread (id = run id) executed in a worker thread.

Events from `agents.coding.CodingAgent.run` become AgentStep rows (tokens are not stored, the
assistant message that follows carries the text). A dangerous tool call pauses the run
(`awaiting_approval`) until `decide()` resumes it. Workspaces live under
VAR_DIR/workspaces/<owner id>/<name>, so a user never reaches another user's files.
"""
import logging
import threading
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agents.coding import AgentConfig, CodingAgent
from agents.coding.checkpoint import open_checkpointer
from agents.model_client import ModelConfig
from app.backends.base import ModelBackend
from app.core.config import Settings
from app.db.models import AgentRun, AgentStep, utcnow
from app.services.cancellation import CancellableChatModel, Cancellations, RunCancelled
from tools.calculator import calculator_tool
from tools.registry import ToolError, ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

log = logging.getLogger("app.agent_runs")
TERMINAL = {"done", "budget_exhausted", "failed", "cancelled"}


class SeedError(ValueError):
    """A file given with a new run cannot be put into its workspace."""


def workspace_dir(settings: Settings, owner_id: str, name: str) -> Path:
    """The directory of a user's named workspace."""
    return settings.var_dir / "workspaces" / owner_id / name


class AgentRunner:
    """Starts and resumes runs in background threads; state lives in the database."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], backend: ModelBackend) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.sandbox = Sandbox()
        url = settings.database_url or ""
        self.checkpoints = url if url.startswith("postgresql") else str(settings.var_dir / "agent-checkpoints.sqlite")
        self.cancellations = Cancellations()

    def seed(self, root: Path, files: dict[str, str]) -> None:
        """Create the workspace and put `files` in it through the workspace's confined writer
        (the one resolve-and-check); SeedError when a path escapes or cannot be written."""
        root.mkdir(parents=True, exist_ok=True)
        workspace = Workspace(root, self.sandbox)
        for rel, content in files.items():
            try:
                workspace.write(rel, content)
            except ToolError as exc:
                raise SeedError(f"file path escapes the workspace or cannot be written: {exc}") from None

    def start(self, run_id: str, task: str) -> None:
        threading.Thread(target=self._drive, args=(run_id, task, None), daemon=True, name=f"agent {run_id}").start()

    def decide(self, run_id: str, approved: bool) -> None:
        threading.Thread(target=self._drive, args=(run_id, None, approved), daemon=True, name=f"agent {run_id}").start()

    def cancel(self, run_id: str) -> None:
        """Ask a running run to stop; it ends `cancelled` at its next model token or turn."""
        self.cancellations.cancel(run_id)

    def _drive(self, run_id: str, task: str | None, approved: bool | None) -> None:
        with self.sessions() as db:
            run = db.get(AgentRun, run_id)
            run.status, run.pending_interrupt = "running", None
            db.commit()
            try:
                self.cancellations.check(run_id)
                workspace = Workspace(Path(run.workspace), self.sandbox)
                registry = ToolRegistry().register(*workspace_tools(workspace), calculator_tool(self.sandbox))
                model = CancellableChatModel(ModelConfig(base_url=self.backend.base_url, model=run.model,
                                                         api_key=self.backend.api_key or "not-needed"),
                                             self.cancellations.flag(run_id))
                with open_checkpointer(self.checkpoints) as checkpointer:
                    agent = CodingAgent(model, registry, checkpointer, AgentConfig(max_steps=run.max_steps))
                    for event in agent.run(run_id, task=task, approved=approved):
                        if event.kind != "token":
                            self._record(db, run, event)
                self.cancellations.check(run_id)
            except RunCancelled:
                run.status, run.pending_interrupt, run.finished_at = "cancelled", None, utcnow()
                db.commit()
            except Exception as exc:  # noqa: BLE001 - any failure ends the run with its message
                log.exception("agent run failed", extra={"run_id": run_id})
                run.status, run.error, run.finished_at = "failed", f"{exc.__class__.__name__}: {exc}", utcnow()
                db.commit()

    def _record(self, db: Session, run: AgentRun, event) -> None:  # noqa: ANN001 - agents.coding.AgentEvent
        data = {k: v for k, v in asdict(event).items() if v not in ("", [], {}) and k != "kind"}
        seq = db.scalar(select(func.coalesce(func.max(AgentStep.seq), 0)).where(AgentStep.run_id == run.id)) + 1
        db.add(AgentStep(run_id=run.id, seq=seq, kind=event.kind, data=data))
        if event.kind == "approval":
            run.status, run.pending_interrupt = "awaiting_approval", {"calls": event.calls}
        elif event.kind == "finished":
            run.status, run.result, run.finished_at = event.status, {"answer": event.text}, utcnow()
        db.commit()
