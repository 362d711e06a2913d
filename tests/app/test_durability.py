"""`kill -9` of a real app process during an eval run, an agent run and an ingestion: after a
restart on the same database and VAR_DIR each finishes, with no sample lost or stored twice; the
native model server dies with the app, and the restarted app's model server is its own.

Once, every one of these runs stayed `running` forever after a crash, and the orphaned model
server kept the port while each restarted app crash-looped its own.
"""
import json
import os
import signal
import time

import httpx
import pytest

from tests.app.conftest import AppServer, auth, free_port, new_user, start_app, stop_app
from tests.retrieval.documents import filler_paragraphs
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall

FAST_JOBS = {"JOB_LEASE_S": "3", "JOB_HEARTBEAT_S": "0.5", "RATE_LIMIT_PER_MINUTE": "100000"}


def kill9(server: AppServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def poll(server: AppServer, key: str, path: str, until, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{server.url}{path}", headers=auth(key), timeout=30).json()
        if until(body):
            return body
        assert time.monotonic() < deadline, f"{path} never got there: {body}"
        time.sleep(0.2)


def reply(body: dict) -> Reply:
    """A HumanEval completion after a pause (so that a run is still going when the app is killed);
    an agent's task: look around with read-only tools for a few turns, then answer."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if user.startswith("survey"):
        turns = sum(m["role"] == "tool" for m in body["messages"])
        if turns < 6:
            return Reply(tool_calls=[ToolCall("list_files", {}) if turns % 2 else ToolCall("read_file", {"path": "a.txt"})],
                         delay_s=0.4)
        return Reply(content=f"surveyed after {turns} tool calls")
    return Reply(content="    return None\n", delay_s=0.25)


@pytest.fixture(scope="module")
def model():
    with ScriptedOpenAIServer(reply, model="scripted-model") as server:
        yield server


def scripted_app(tmp_path, model: ScriptedOpenAIServer, **env: str) -> AppServer:
    return start_app(tmp_path, f"sqlite:///{tmp_path / 'app.db'}",
                     {"MODEL_BACKEND": "openai", "MODEL_BASE_URL": model.base_url, "MODEL_NAME": "scripted-model",
                      **FAST_JOBS, **env})


def test_an_eval_run_killed_at_5_of_20_finishes_after_a_restart_with_every_sample_once(tmp_path, model):
    first = scripted_app(tmp_path, model)
    key = new_user(first, "eval")
    run = httpx.post(f"{first.url}/api/eval-runs", headers=auth(key),
                     json={"benchmark": "humaneval", "limit": 20, "concurrency": 1}).json()
    assert run["n_total"] == 20  # known from the start
    poll(first, key, f"/api/eval-runs/{run['id']}", lambda r: r["n_done"] >= 5)
    kill9(first)
    second = scripted_app(tmp_path, model)
    try:
        done = poll(second, key, f"/api/eval-runs/{run['id']}", lambda r: r["status"] in ("done", "failed"))
        results = httpx.get(f"{second.url}/api/eval-runs/{run['id']}/results", headers=auth(key)).json()
    finally:
        stop_app(second)
    assert done["status"] == "done" and done["n_done"] == 20 and done["metrics"]
    keys = [(r["problem_id"], r["sample_index"]) for r in results]
    assert sorted(keys) == sorted({(f"HumanEval/{i}", 0) for i in range(20)})  # none lost, none twice


def test_an_agent_run_killed_mid_run_continues_from_its_checkpoint(tmp_path, model):
    first = scripted_app(tmp_path, model)
    key = new_user(first, "agent")
    run = httpx.post(f"{first.url}/api/agent-runs", headers=auth(key),
                     json={"task": "survey the workspace", "workspace": "w", "files": {"a.txt": "alpha\n"}}).json()
    poll(first, key, f"/api/agent-runs/{run['id']}/steps", lambda steps: sum(s["kind"] == "tool" for s in steps) >= 2)
    kill9(first)
    second = scripted_app(tmp_path, model)
    try:
        done = poll(second, key, f"/api/agent-runs/{run['id']}", lambda r: r["status"] not in ("queued", "running"))
        steps = httpx.get(f"{second.url}/api/agent-runs/{run['id']}/steps", headers=auth(key)).json()
    finally:
        stop_app(second)
    assert done["status"] == "done" and done["result"]["answer"] == "surveyed after 6 tool calls"
    assert sum(s["kind"] == "tool" for s in steps) >= 6  # those of the first leg are kept
    surveys = [b for b in model.chat_requests if any(m["role"] == "user" and m["content"].startswith("survey")
                                                     for m in b["messages"])]
    assert max(sum(m["role"] == "user" for m in body["messages"]) for body in surveys) == 1  # never restarted


def test_an_ingestion_killed_half_way_is_indexed_after_a_restart(tmp_path, model):
    env = {"MAX_UPLOAD_BYTES": str(4 << 20)}
    first = scripted_app(tmp_path, model, **env)
    key = new_user(first, "docs")
    text = "\n\n".join(filler_paragraphs(1800)).encode()
    upload = httpx.post(f"{first.url}/api/documents", headers=auth(key), timeout=120,
                        files={"file": ("long.txt", text, "text/plain")})
    assert upload.status_code == 202, upload.text
    doc_id = upload.json()["id"]
    half = poll(first, key, f"/api/documents/{doc_id}", lambda d: d["chunks_done"] > 0)
    assert half["status"] == "processing" and half["chunks_done"] < half["chunks_total"]
    kill9(first)
    assert (tmp_path / "var" / "uploads" / doc_id).is_file()  # the bytes outlive the process
    second = scripted_app(tmp_path, model, **env)
    try:
        ready = poll(second, key, f"/api/documents/{doc_id}", lambda d: d["status"] in ("ready", "failed"))
        hits = httpx.get(f"{second.url}/api/search", params={"q": "waggle dance", "k": 3}, headers=auth(key)).json()
    finally:
        stop_app(second)
    assert ready["status"] == "ready" and ready["chunks_done"] == ready["chunks_total"] == half["chunks_total"]
    assert hits["results"] and hits["results"][0]["document_id"] == doc_id
    assert not (tmp_path / "var" / "uploads" / doc_id).exists()


def test_the_native_model_server_dies_with_the_app_and_the_restarted_app_has_its_own(tmp_path):
    pidfile = tmp_path / "var" / "run" / "model_server.json"
    first = start_app(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", {"MODEL_PORT": str(free_port())})
    old = json.loads(pidfile.read_text())["pid"]
    assert httpx.get(f"{first.url}/health").json()["model"]["pid"] == old
    kill9(first)
    deadline = time.monotonic() + 10
    while _alive(old):
        assert time.monotonic() < deadline, f"model server {old} outlived its app"
        time.sleep(0.1)
    second = start_app(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", {"MODEL_PORT": first.settings_env["MODEL_PORT"]})
    try:
        health = httpx.get(f"{second.url}/health")
        new = json.loads(pidfile.read_text())["pid"]
    finally:
        stop_app(second)
    assert health.status_code == 200 and health.json()["model"]["state"] == "ready"
    assert health.json()["model"]["pid"] == new != old
    assert not pidfile.exists()  # a clean stop removes it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
