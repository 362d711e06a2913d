"""Coding agent end to end: a scripted model behind a real OpenAI-compatible HTTP server, real
tools, pytest in the real sandbox, real SQLite (and PostgreSQL when TEST_DATABASE_URL is set)
checkpoints, and the CLI run as a separate process."""
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agents.coding import AgentConfig, CodingAgent
from agents.coding.checkpoint import open_checkpointer
from agents.coding.cli import main
from agents.model_client import ChatModel, ModelConfig
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall
from tools.registry import ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTEST = "python -m pytest -q -p no:cacheprovider"
TASK = "The test in test_calc.py fails. Fix the code."


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.py").write_text("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    return root


def fixer(body: dict) -> Reply:
    """A scripted developer that reacts to real tool output: look, test, fix, test, answer."""
    messages = body["messages"]
    tool_results = [m for m in messages if m["role"] == "tool"]
    last_call = next((m["tool_calls"][-1]["function"]["name"] for m in reversed(messages)
                      if m.get("tool_calls")), None)
    last = tool_results[-1]["content"] if tool_results else ""
    if last_call is None:
        return Reply(content="Let me look at the code.", tool_calls=[ToolCall("read_file", {"path": "calc.py"})])
    if last_call == "read_file":
        return Reply(tool_calls=[ToolCall("run_command", {"command": PYTEST})])
    if last_call == "run_command" and "1 failed" in last:
        return Reply(content="add subtracts.", tool_calls=[
            ToolCall("edit_file", {"path": "calc.py", "search": "return a - b", "replace": "return a + b"})])
    if last_call == "edit_file":
        return Reply(tool_calls=[ToolCall("run_command", {"command": PYTEST})])
    if last_call == "run_command" and "1 passed" in last:
        return Reply(content="Fixed: add() subtracted; it now adds and the test passes.")
    return Reply(content=f"unexpected state: {last_call} / {last[:200]}")


def make_agent(server: ScriptedOpenAIServer, repo: Path, checkpointer, **config) -> CodingAgent:
    sandbox = Sandbox()
    registry = ToolRegistry().register(*workspace_tools(Workspace(repo, sandbox)))
    model = ChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))
    return CodingAgent(model, registry, checkpointer, AgentConfig(**config))


def test_agent_fixes_failing_test(repo, tmp_path):
    with ScriptedOpenAIServer(fixer) as server, open_checkpointer(tmp_path / "db.sqlite") as saver:
        agent = make_agent(server, repo, saver, auto_approve=True)
        events = list(agent.run("t1", task=TASK))
    finished = events[-1]
    assert finished.kind == "finished" and finished.status == "done"
    assert finished.text == "Fixed: add() subtracted; it now adds and the test passes."
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    tools = [(e.name, e.ok) for e in events if e.kind == "tool"]
    assert tools == [("read_file", True), ("run_command", True), ("edit_file", True), ("run_command", True)]
    runs = [e.text for e in events if e.kind == "tool" and e.name == "run_command"]
    assert "1 failed" in runs[0] and runs[1].startswith("exit code 0") and "1 passed" in runs[1]
    assert "".join(e.text for e in events if e.kind == "token").startswith("Let me look at the code.")
    request = server.chat_requests[0]
    assert request["messages"][0]["role"] == "system" and request["messages"][1]["content"] == TASK
    assert {t["function"]["name"] for t in request["tools"]} >= {"read_file", "edit_file", "run_command"}
    assert len(server.chat_requests) == 5


def test_bad_arguments_go_back_to_the_model(repo, tmp_path):
    script = [[ToolCall("read_file", {"path": 7, "start_line": 0})], "I will stop here."]
    with ScriptedOpenAIServer(script) as server, open_checkpointer(tmp_path / "db.sqlite") as saver:
        events = list(make_agent(server, repo, saver).run("t", task="read it"))
        tool_message = server.chat_requests[1]["messages"][-1]
    assert events[-1].status == "done"
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("error: invalid arguments for read_file: path: Input should be")
    assert "start_line: Input should be greater than or equal to 1" in tool_message["content"]


def test_dangerous_tool_waits_for_approval_and_can_be_denied(repo, tmp_path):
    script = [[ToolCall("write_file", {"path": "calc.py", "content": "broken"})], "Understood, not writing."]
    with ScriptedOpenAIServer(script) as server, open_checkpointer(tmp_path / "db.sqlite") as saver:
        agent = make_agent(server, repo, saver)
        events = list(agent.run("t", task="overwrite calc.py"))
        assert events[-1].kind == "approval"
        assert [c["function"]["name"] for c in events[-1].calls] == ["write_file"]
        assert agent.pending_approval("t") == events[-1].calls
        assert "return a - b" in (repo / "calc.py").read_text()  # nothing ran yet
        resumed = list(agent.run("t", approved=False))
        tool_message = server.chat_requests[1]["messages"][-1]
    assert resumed[-1].kind == "finished" and resumed[-1].text == "Understood, not writing."
    assert tool_message["content"] == "error: the user did not approve this action"
    assert "return a - b" in (repo / "calc.py").read_text()


def test_step_budget(repo, tmp_path):
    always_listing = lambda body: [ToolCall("list_files", {})]  # noqa: E731
    with ScriptedOpenAIServer(always_listing) as server:
        code = main(["--workspace", str(repo), "--base-url", server.base_url, "--model", "m",
                     "--max-steps", "3", "--db", str(tmp_path / "db.sqlite"), "--thread-id", "b", "list"])
        assert len(server.chat_requests) == 3
        # The thread stays usable: a new task answers the dangling tool call first.
        with ScriptedOpenAIServer(["done"]) as again:
            assert main(["--workspace", str(repo), "--base-url", again.base_url, "--model", "m",
                         "--db", str(tmp_path / "db.sqlite"), "--thread-id", "b", "stop"]) == 0
            roles = [m["role"] for m in again.chat_requests[0]["messages"][-3:]]
    assert code == 3
    assert roles == ["assistant", "tool", "user"]


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.coding", *args], input=stdin, text=True,
                          capture_output=True, cwd=REPO_ROOT, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_cli_thread_resumes_after_process_restart(repo, tmp_path):
    """First process: reads, wants to run pytest, nobody approves: paused (exit 4). Second
    process (same thread and db): resumes from the checkpoint and fixes the test."""
    db = str(tmp_path / "threads.sqlite")
    common = ["--workspace", str(repo), "--model", "scripted-model", "--db", db, "--thread-id", "job-1"]
    with ScriptedOpenAIServer(fixer) as server:
        first = run_cli(*common, "--base-url", server.base_url, TASK)  # stdin closed: nobody approves
        assert first.returncode == 4, first.stdout + first.stderr
        assert f'  -> run_command {{"command": "{PYTEST}"}}' in first.stdout
        assert "Approval needed for:\n  run_command" in first.stdout
        assert "paused: waiting for approval. Resume with --thread-id job-1" in first.stdout
        assert len(server.chat_requests) == 2
        second = run_cli(*common, "--base-url", server.base_url, "--auto-approve")
        assert second.returncode == 0, second.stdout + second.stderr
        history = server.chat_requests[2]["messages"]
    out = second.stdout
    assert out.startswith("thread job-1, workspace ") and "resuming thread job-1" in out
    assert "resuming thread job-1\n  <- run_command: exit code 1\n" in out  # the approved call runs first
    assert "  <- edit_file: replaced 1 occurrence(s) in calc.py" in out
    assert "  <- run_command: exit code 0" in out
    assert out.rstrip().endswith("Final answer:\nFixed: add() subtracted; it now adds and the test passes.")
    # The new process continued the stored thread: task and the first process's tool result are there.
    assert history[1] == {"role": "user", "content": TASK}
    assert history[3]["role"] == "tool" and "return a - b" in history[3]["content"]
    assert "1 failed" in history[5]["content"]
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    out = io.StringIO()
    assert main([*common, "--base-url", "http://127.0.0.1:9/v1"], stdin=io.StringIO(), out=out) == 1
    assert "error: give a TASK (the thread has nothing pending)" in out.getvalue()


def test_cli_bad_input(tmp_path, capsys):
    def cli(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(list(args), stdin=io.StringIO(), out=out), out.getvalue()

    base = ["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--db", str(tmp_path / "db.sqlite")]
    code, out = cli("--workspace", str(tmp_path / "nope"), *base, "x")
    assert code == 1 and "error: workspace is not a directory" in out
    code, out = cli("--workspace", str(tmp_path), *base, "--timeout", "2", "x")
    assert code == 1 and "error: cannot reach the model endpoint http://127.0.0.1:9/v1" in out
    (tmp_path / "file").write_text("")
    code, out = cli("--workspace", str(tmp_path), *base[:4], "--db", str(tmp_path / "file" / "db"), "x")
    assert code == 1 and "error: cannot open the SQLite thread store" in out
    code, out = cli("--workspace", str(tmp_path), *base[:4], "--db", "postgresql://nobody@127.0.0.1:9/x", "x")
    assert code == 1 and "error: cannot open the PostgreSQL thread store" in out
    with pytest.raises(SystemExit) as usage:
        main(["--workspace", str(tmp_path)])
    assert usage.value.code == 2 and "--base-url" in capsys.readouterr().err


def test_postgres_checkpointer_survives_a_new_agent(repo):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set (CI sets it to a running PostgreSQL server)")
    thread = f"pg-{uuid.uuid4().hex[:8]}"
    with ScriptedOpenAIServer(fixer) as server:
        with open_checkpointer(url) as saver:
            events = list(make_agent(server, repo, saver).run(thread, task=TASK))
            assert events[-1].kind == "approval"
        with open_checkpointer(url) as saver:  # a new connection and a new agent
            agent = make_agent(server, repo, saver)
            assert [c["function"]["name"] for c in agent.pending_approval(thread)] == ["run_command"]
            for _ in range(3):
                events = list(agent.run(thread, approved=True))
                if events[-1].kind == "finished":
                    break
            assert json.dumps(agent.messages(thread)).count('"role": "tool"') == 4
    assert events[-1].status == "done"
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_cli_asks_for_approval_on_stdin(repo, tmp_path):
    script = [[ToolCall("write_file", {"path": "a.txt", "content": "A"})],
              [ToolCall("write_file", {"path": "b.txt", "content": "B"})], "wrote a, not b"]
    with ScriptedOpenAIServer(script) as server:
        out = io.StringIO()
        code = main(["--workspace", str(repo), "--base-url", server.base_url, "--model", "m",
                     "--db", str(tmp_path / "db.sqlite"), "write two files"], stdin=io.StringIO("y\nn\n"), out=out)
        denied = server.chat_requests[2]["messages"][-1]["content"]
    assert code == 0, out.getvalue()
    assert out.getvalue().count("Approve? [y/N]") == 2
    assert (repo / "a.txt").read_text() == "A" and not (repo / "b.txt").exists()
    assert denied == "error: the user did not approve this action"
