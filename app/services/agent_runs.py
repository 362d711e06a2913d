"""Coding-agent runs as `agent_run` jobs: each run is a LangGraph thread (id = run id).

Starting a run seeds its workspace and queues a job; answering an approval queues the next leg.
The job drives `agents.coding.CodingAgent` with `resume=True`, so a job picked up after its
process died continues the thread from its last LangGraph checkpoint (a pending approval is
reported again, an unfinished step is redone) instead of starting the task over. Events become
AgentStep rows (tokens are not stored, the assistant message that follows carries the text), one
short session each. A dangerous tool call pauses the run (`awaiting_approval`, no job) until
`decide()`. Workspaces live under VAR_DIR/workspaces/<owner id>/<name>, so a user never reaches
another user's files.
"""
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agents.coding import AgentConfig, CodingAgent
from agents.coding.checkpoint import open_checkpointer
from agents.model_client import ChatModel, ModelConfig
from app.backends.base import ModelBackend
from app.core.config import Settings
from app.db.models import AgentRun, AgentStep, JobStatus, User, utcnow
from app.services.errors import Conflict, Unusable
from app.services.jobs import JobContext, JobRunner
from tools.calculator import calculator_tool
from tools.registry import ToolError, ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

log = logging.getLogger("app.agent_runs")
KIND = "agent_run"
TERMINAL = {"done", "budget_exhausted", "failed", "cancelled"}


class StoppableChatModel(ChatModel):
    """A ChatModel that checks the job before a turn and at every token: a cancel (or a stopping
    app) raises JobStopped there, which closes the model's stream, so the server stops generating."""

    def __init__(self, config: ModelConfig, ctx: JobContext) -> None:
        super().__init__(config)
        self._ctx = ctx

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             on_token: Callable[[str], None] | None = None, max_tokens: int | None = None) -> dict[str, Any]:
        def checked(text: str) -> None:
            self._ctx.check()
            if on_token is not None:
                on_token(text)

        self._ctx.check()
        return super().chat(messages, tools, checked, max_tokens)


def workspace_dir(settings: Settings, owner_id: str, name: str) -> Path:
    """The directory of a user's named workspace."""
    return settings.var_dir / "workspaces" / owner_id / name


class AgentRuns:
    """The agent-run service (create, decide, cancel) and the `agent_run` job handler."""

    kind = KIND

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], backend: ModelBackend) -> None:
        self.settings = settings
        self.sessions = sessions
        self.backend = backend
        self.max_workers = settings.job_agent_workers
        self.sandbox = Sandbox()
        url = settings.database_url or ""
        self.checkpoints = url if url.startswith("postgresql") else str(settings.var_dir / "agent-checkpoints.sqlite")

    # -- what routes call ------------------------------------------------------------------
    def create(self, db: Session, jobs: JobRunner, user: User, task: str, workspace: str, files: dict[str, str],
               max_steps: int) -> AgentRun:
        root = workspace_dir(self.settings, user.id, workspace)
        self._seed(root, files)
        run = AgentRun(owner_id=user.id, task=task, workspace=str(root.resolve()), model=self.backend.model_name,
                       max_steps=max_steps)
        db.add(run)
        db.flush()
        jobs.enqueue(db, KIND, run.id, user.id, {"task": task})
        db.commit()
        jobs.wake()
        return run

    def decide(self, db: Session, jobs: JobRunner, run: AgentRun, approved: bool) -> AgentRun:
        """Approve or deny the calls a paused run waits on; the run continues as a new job."""
        if run.status != "awaiting_approval":
            raise Conflict(f"run {run.id} is {run.status}, not awaiting approval")
        run.status = "queued"
        jobs.enqueue(db, KIND, run.id, run.owner_id, {"approved": approved})
        db.commit()
        jobs.wake()
        return run

    def cancel(self, db: Session, jobs: JobRunner, run: AgentRun) -> AgentRun:
        """A queued or paused run ends at once, a running one at its next model token."""
        return jobs.cancel_and_wait(db, KIND, run, TERMINAL)

    def _seed(self, root: Path, files: dict[str, str]) -> None:
        """Create the workspace and put `files` in it through the workspace's confined writer
        (the one resolve-and-check)."""
        root.mkdir(parents=True, exist_ok=True)
        workspace = Workspace(root, self.sandbox)
        for rel, content in files.items():
            try:
                workspace.write(rel, content)
            except ToolError as exc:
                raise Unusable(f"file path escapes the workspace or cannot be written: {exc}") from None

    # -- the job ---------------------------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        with self.sessions() as db:
            run = db.get(AgentRun, ctx.subject_id)
            if run is None or run.status in TERMINAL:
                return
            run.status, run.pending_interrupt = "running", None
            db.commit()
            workspace_path, model_name, max_steps = Path(run.workspace), run.model, run.max_steps
        workspace = Workspace(workspace_path, self.sandbox)
        registry = ToolRegistry().register(*workspace_tools(workspace), calculator_tool(self.sandbox))
        model = StoppableChatModel(ModelConfig(base_url=self.backend.base_url, model=model_name,
                                               api_key=self.backend.api_key or "not-needed"), ctx)
        with open_checkpointer(self.checkpoints) as checkpointer:
            agent = CodingAgent(model, registry, checkpointer, AgentConfig(max_steps=max_steps))
            events = agent.run(ctx.subject_id, task=ctx.payload.get("task"), approved=ctx.payload.get("approved"),
                               resume=True)
            try:
                for event in events:
                    ctx.check()
                    if event.kind != "token":
                        self._record(ctx.subject_id, event)
            finally:
                events.close()

    def finish(self, subject_id: str, status: JobStatus, error: str | None) -> None:
        with self.sessions() as db:
            run = db.get(AgentRun, subject_id)
            if run is not None and run.status not in TERMINAL:
                run.status, run.error, run.finished_at = status.value, error, utcnow()
                run.pending_interrupt = None
                db.commit()

    def _record(self, run_id: str, event) -> None:  # noqa: ANN001 - agents.coding.AgentEvent
        data = {k: v for k, v in asdict(event).items() if v not in ("", [], {}) and k != "kind"}
        with self.sessions() as db:
            run = db.get(AgentRun, run_id)
            seq = db.scalar(select(func.coalesce(func.max(AgentStep.seq), 0)).where(AgentStep.run_id == run_id)) + 1
            db.add(AgentStep(run_id=run_id, seq=seq, kind=event.kind, data=data))
            if event.kind == "approval":
                run.status, run.pending_interrupt = "awaiting_approval", {"calls": event.calls}
            elif event.kind == "finished":
                run.status, run.result, run.finished_at = event.status, {"answer": event.text}, utcnow()
            db.commit()
