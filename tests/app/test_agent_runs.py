"""Agent runs through the app: a real app process, the real coding agent, a scripted model server."""
import json
import time

import httpx
import pytest

from tests.app.conftest import auth, new_user, start_app, stop_app
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall


# The attack that once leaked the admin key: plant a symlink to the app's environment from the
# sandbox, then read it with the host-side (not dangerous) tools.
ATTACK = [ToolCall("run_command", {"command": "ln -sf /proc/self/environ notes.txt"}),
          ToolCall("grep", {"pattern": "ADMIN|admin"}), ToolCall("read_file", {"path": "notes.txt"}),
          ToolCall("list_files", {})]


def script(body: dict) -> object:
    """Write the file named at the end of the task, then report what the tool said (or attack); a
    task that says "slowly" gets a long answer, slowly streamed."""
    task = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if "slowly" in task:
        return Reply(content="thinking " * 500, chunk_delay_s=0.05)
    if task.startswith("attack"):
        n_results = sum(m["role"] == "tool" for m in body["messages"])
        return [ATTACK[n_results]] if n_results < len(ATTACK) else "attack over"
    last = body["messages"][-1]
    if last["role"] == "tool":
        return f"finished; tool said: {last['content'][:60]}"
    return [ToolCall("write_file", {"path": last["content"].split()[-1], "content": "print('hi')\n"})]


@pytest.fixture(scope="module")
def agent_app(database_url, tmp_path_factory):
    with ScriptedOpenAIServer(script, model="scripted-model") as model:
        tmp = tmp_path_factory.mktemp("agent-app")
        server = start_app(tmp, database_url, {"MODEL_BACKEND": "openai", "MODEL_BASE_URL": model.base_url,
                                              "MODEL_NAME": "scripted-model", "RATE_LIMIT_PER_MINUTE": "1000"})
        yield server, tmp / "var"
        stop_app(server)


def events(server, key: str, run_id: str) -> list[dict]:
    """Follow the SSE stream until it ends; return the step payloads and the end marker."""
    out = []
    with httpx.stream("GET", f"{server.url}/api/agent-runs/{run_id}/events", headers=auth(key), timeout=60) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def test_agent_run_pauses_for_approval_and_writes_after_yes(agent_app):
    server, var = agent_app
    key = new_user(server, "coder")
    start = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                       json={"task": "create hello.py", "workspace": "demo", "files": {"README.md": "demo\n"}})
    assert start.status_code == 202, start.text
    run_id = start.json()["id"]
    first = events(server, key, run_id)
    assert first[-1] == {"status": "awaiting_approval"}
    approval = [e for e in first if e.get("kind") == "approval"][0]
    assert approval["data"]["calls"][0]["function"]["name"] == "write_file"
    user_id = httpx.get(f"{server.url}/api/me", headers=auth(key)).json()["id"]
    target = var / "workspaces" / user_id / "demo" / "hello.py"
    assert not target.exists()
    assert (target.parent / "README.md").read_text() == "demo\n"

    ok = httpx.post(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key), json={"approved": True})
    assert ok.status_code == 202
    rest = events(server, key, run_id)
    assert rest[-1] == {"status": "done"}
    tool = [e for e in rest if e.get("kind") == "tool"][0]["data"]
    assert tool["name"] == "write_file" and tool["ok"] is True
    assert target.read_text() == "print('hi')\n"
    run = httpx.get(f"{server.url}/api/agent-runs/{run_id}", headers=auth(key)).json()
    assert run["status"] == "done" and run["result"]["answer"].startswith("finished; tool said:")
    again = httpx.post(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key), json={"approved": True})
    assert again.status_code == 409


def test_denied_call_is_not_run_and_runs_are_private(agent_app):
    server, var = agent_app
    key, other = new_user(server, "coder"), new_user(server, "other")
    run_id = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                        json={"task": "create nope.py", "workspace": "w2"}).json()["id"]
    assert events(server, key, run_id)[-1] == {"status": "awaiting_approval"}
    for method, path in [("GET", ""), ("GET", "/steps"), ("GET", "/events"), ("POST", "/approval")]:
        resp = httpx.request(method, f"{server.url}/api/agent-runs/{run_id}{path}", headers=auth(other),
                             json={"approved": True} if method == "POST" else None)
        assert resp.status_code == 404, (path, resp.text)
    assert httpx.get(f"{server.url}/api/agent-runs", headers=auth(other)).json() == []
    httpx.post(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key), json={"approved": False})
    rest = events(server, key, run_id)
    assert rest[-1] == {"status": "done"}
    tool = [e for e in rest if e.get("kind") == "tool"][0]["data"]
    assert tool["ok"] is False and "did not approve" in tool["text"]
    user_id = httpx.get(f"{server.url}/api/me", headers=auth(key)).json()["id"]
    assert not (var / "workspaces" / user_id / "w2" / "nope.py").exists()


def test_symlink_planted_in_the_sandbox_does_not_leak_the_app_environment(agent_app):
    server, var = agent_app
    key = new_user(server, "attacker")
    run_id = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                        json={"task": "attack", "workspace": "trap", "files": {"a.txt": "hello\n"}}).json()["id"]
    assert events(server, key, run_id)[-1] == {"status": "awaiting_approval"}  # run_command is dangerous
    httpx.post(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key), json={"approved": True})
    rest = events(server, key, run_id)
    assert rest[-1] == {"status": "done"}
    tools = {e["data"]["name"]: e["data"] for e in rest if e.get("kind") == "tool"}
    assert tools["run_command"]["ok"] is True
    user_id = httpx.get(f"{server.url}/api/me", headers=auth(key)).json()["id"]
    assert (var / "workspaces" / user_id / "trap" / "notes.txt").is_symlink()
    assert tools["grep"]["ok"] is True and "(no matches)" in tools["grep"]["text"]
    assert tools["read_file"]["ok"] is False and "outside the workspace" in tools["read_file"]["text"]
    assert tools["list_files"]["text"].split() == ["a.txt"]
    steps = httpx.get(f"{server.url}/api/agent-runs/{run_id}/steps", headers=auth(key)).text
    assert server.admin_key not in steps and "PATH=" not in steps


def test_seeding_files_through_a_planted_symlink_is_refused(agent_app, tmp_path):
    server, var = agent_app
    key = new_user(server, "attacker")
    user_id = httpx.get(f"{server.url}/api/me", headers=auth(key)).json()["id"]
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace = var / "workspaces" / user_id / "seeded"
    workspace.mkdir(parents=True)
    (workspace / "link").symlink_to(outside)  # as a previous run's `ln -s` would leave it
    resp = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                      json={"task": "x", "workspace": "seeded", "files": {"link/evil.txt": "x"}})
    assert resp.status_code == 422 and "outside the workspace" in resp.json()["detail"]
    assert list(outside.iterdir()) == []
    git = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                     json={"task": "x", "workspace": "seeded", "files": {".git/hooks/pre-commit": "x"}})
    assert git.status_code == 422 and ".git" in git.json()["detail"]


def test_bad_workspace_input_is_422(agent_app):
    server, _ = agent_app
    key = new_user(server, "coder")
    bad_name = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key), json={"task": "x", "workspace": "../up"})
    assert bad_name.status_code == 422 and "workspace" in bad_name.json()["detail"]
    escape = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                        json={"task": "x", "files": {"../../evil.txt": "x"}})
    assert escape.status_code == 422 and "escapes the workspace" in escape.json()["detail"]


def test_the_approval_shows_the_diff_and_cancel_ends_a_paused_run(agent_app):
    server, var = agent_app
    key = new_user(server, "coder")
    run_id = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key), json={
        "task": "rewrite hello.py", "workspace": "w3", "files": {"hello.py": "print('old')\n"}}).json()["id"]
    assert events(server, key, run_id)[-1] == {"status": "awaiting_approval"}
    preview = httpx.get(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key)).json()["calls"]
    assert preview[0]["name"] == "write_file"
    assert "--- a/hello.py\n+++ b/hello.py\n" in preview[0]["diff"]
    assert "-print('old')\n+print('hi')\n" in preview[0]["diff"]
    cancelled = httpx.post(f"{server.url}/api/agent-runs/{run_id}/cancel", headers=auth(key), timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert httpx.get(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key)).status_code == 409
    assert httpx.post(f"{server.url}/api/agent-runs/{run_id}/approval", headers=auth(key),
                      json={"approved": True}).status_code == 409
    user_id = httpx.get(f"{server.url}/api/me", headers=auth(key)).json()["id"]
    assert (var / "workspaces" / user_id / "w3" / "hello.py").read_text() == "print('old')\n"


def test_cancel_stops_a_running_run_at_its_next_token(agent_app):
    server, _ = agent_app
    key = new_user(server, "coder")
    run_id = httpx.post(f"{server.url}/api/agent-runs", headers=auth(key),
                        json={"task": "think slowly", "workspace": "w4"}).json()["id"]
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/api/agent-runs/{run_id}", headers=auth(key)).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    started = time.monotonic()
    cancelled = httpx.post(f"{server.url}/api/agent-runs/{run_id}/cancel", headers=auth(key), timeout=30).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert time.monotonic() - started < 5  # the answer would have streamed for 25 s
    assert events(server, key, run_id)[-1] == {"status": "cancelled"}
