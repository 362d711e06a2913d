"""Command line of the coding agent (contract 5).

    python -m agents.coding --workspace DIR --base-url URL --model NAME [--api-key K]
        [--max-steps N] [--auto-approve] [--thread-id ID] [--db PATH|postgresql://...] ["TASK"]

Prints each step (tool, arguments, a summary of the result) and the final answer.
Exit codes: 0 done; 1 error (bad input, model unreachable); 2 usage; 3 step budget exhausted;
4 paused, waiting for approval of a dangerous tool call (rerun with the same --thread-id and
--db, without TASK, to answer; --auto-approve approves it).
"""
from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import TextIO

from agents.coding.checkpoint import CheckpointError, open_checkpointer
from agents.coding.graph import AgentConfig, AgentEvent, CodingAgent, describe_call
from agents.model_client import ChatModel, ModelConfig, ModelError
from tools.calculator import calculator_tool
from tools.registry import ToolError, ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

EXIT_OK, EXIT_ERROR, EXIT_BUDGET, EXIT_PAUSED = 0, 1, 3, 4
DEFAULT_DB = Path.home() / ".local" / "state" / "deepseek-platform" / "coding-agent.sqlite"
SUMMARY_LINES = 6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.coding", description="Run the private coding agent.")
    parser.add_argument("task", nargs="?", help="what to do (omit to resume a paused thread)")
    parser.add_argument("--workspace", required=True, type=Path, help="directory the agent works in")
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1")
    parser.add_argument("--model", required=True, help="model name served at --base-url")
    parser.add_argument("--api-key", default="not-needed")
    parser.add_argument("--max-steps", type=int, default=30, help="model calls allowed for the task")
    parser.add_argument("--auto-approve", action="store_true", help="run dangerous tools without asking")
    parser.add_argument("--thread-id", default=None, help="conversation to continue or resume")
    parser.add_argument("--db", default=str(DEFAULT_DB), help="SQLite path or postgresql:// URL for threads")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model request")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    return args


def summarize(text: str) -> str:
    lines = text.strip().splitlines() or ["(empty)"]
    extra = f"\n     ... ({len(lines) - SUMMARY_LINES} more lines)" if len(lines) > SUMMARY_LINES else ""
    return "\n     ".join(lines[:SUMMARY_LINES]) + extra


class Printer:
    """Writes agent events as readable steps."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0
        self.streaming = False

    def __call__(self, event: AgentEvent) -> None:
        if event.kind == "token":
            if not self.streaming:
                self.step += 1
                self.out.write(f"[step {self.step}] ")
                self.streaming = True
            self.out.write(event.text)
        elif event.kind == "assistant":
            if not self.streaming:
                self.step += 1
                self.out.write(f"[step {self.step}]")
            self.out.write("\n")
            self.streaming = False
            for call in event.message.get("tool_calls") or []:
                self.out.write(f"  -> {describe_call(call)}\n")
        elif event.kind == "tool":
            mark = "<-" if event.ok else "<! "
            self.out.write(f"  {mark} {event.name}: {summarize(event.text)}\n")
        self.out.flush()


def ask_approval(calls: list[dict], stdin: TextIO, out: TextIO) -> bool | None:
    """True/False from the user, or None when no answer can be read (stdin closed)."""
    out.write("Approval needed for:\n")
    for call in calls:
        out.write(f"  {describe_call(call)}\n")
    out.write("Approve? [y/N] ")
    out.flush()
    answer = stdin.readline()
    if not answer:
        out.write("\n")
        return None
    return answer.strip().lower() in ("y", "yes")


def drive(agent: CodingAgent, thread_id: str, task: str | None, auto_approve: bool,
          stdin: TextIO, out: TextIO) -> int:
    """Run (or resume) the thread to completion, answering approvals; returns the exit code."""
    printer = Printer(out)
    pending = agent.pending_approval(thread_id)
    if pending is not None and task is not None:
        out.write(f"error: thread {thread_id} is waiting for approval; rerun without a TASK to answer it\n")
        return EXIT_ERROR
    if pending is None and task is None:
        out.write("error: give a TASK (the thread has nothing pending)\n")
        return EXIT_ERROR
    decision: bool | None = None
    if pending is not None:
        out.write(f"resuming thread {thread_id}\n")
        decision = True if auto_approve else ask_approval(pending, stdin, out)
        if decision is None:
            return _paused(thread_id, out)
    while True:
        events = agent.run(thread_id, task=None if decision is not None else task, approved=decision)
        for event in events:
            printer(event)
            if event.kind == "approval":
                decision = True if auto_approve else ask_approval(event.calls, stdin, out)
                if decision is None:
                    return _paused(thread_id, out)
                break
            if event.kind == "finished":
                return _finished(event, out)


def _paused(thread_id: str, out: TextIO) -> int:
    out.write(f"paused: waiting for approval. Resume with --thread-id {thread_id} (and the same --db)\n")
    return EXIT_PAUSED


def _finished(event: AgentEvent, out: TextIO) -> int:
    if event.status == "budget_exhausted":
        out.write("stopped: the step budget ran out before the task was done\n")
        return EXIT_BUDGET
    out.write(f"\nFinal answer:\n{event.text}\n")
    return EXIT_OK


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    thread_id = args.thread_id or uuid.uuid4().hex[:12]
    try:
        sandbox = Sandbox()
        workspace = Workspace(args.workspace, sandbox)
        registry = ToolRegistry().register(*workspace_tools(workspace), calculator_tool(sandbox))
        model = ChatModel(ModelConfig(base_url=args.base_url, model=args.model, api_key=args.api_key,
                                      timeout_s=args.timeout))
        out.write(f"thread {thread_id}, workspace {workspace.root}\n")
        with open_checkpointer(args.db) as checkpointer:
            agent = CodingAgent(model, registry, checkpointer,
                                AgentConfig(max_steps=args.max_steps, auto_approve=args.auto_approve))
            return drive(agent, thread_id, args.task, args.auto_approve, stdin, out)
    except (ToolError, ModelError, CheckpointError) as exc:
        out.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.write(f"\ninterrupted; the thread can be resumed with --thread-id {thread_id}\n")
        return EXIT_ERROR
