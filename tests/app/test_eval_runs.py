"""Eval runs through the app: the real evals harness on MATH-500 against a scripted model."""
import time

import httpx
import pytest

from tests.app.conftest import auth, new_user, start_app, stop_app
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer


SLOW = {"on": False}  # a test that cancels makes each answer take a while


def reply(body: dict) -> Reply:
    return Reply(content="So the answer is $\\boxed{3}$.", delay_s=0.5 if SLOW["on"] else 0.0)


@pytest.fixture(scope="module")
def eval_app(database_url, tmp_path_factory):
    with ScriptedOpenAIServer(reply, model="scripted-model") as model:
        server = start_app(tmp_path_factory.mktemp("eval-app"), database_url,
                           {"MODEL_BACKEND": "openai", "MODEL_BASE_URL": model.base_url, "MODEL_NAME": "scripted-model",
                            "RATE_LIMIT_PER_MINUTE": "1000"})  # the test polls
        yield server
        stop_app(server)


def wait_done(server, key: str, run_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        resp = httpx.get(f"{server.url}/api/eval-runs/{run_id}", headers=auth(key))
        assert resp.status_code == 200, resp.text
        run = resp.json()
        if run["status"] in ("done", "failed", "cancelled"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"eval run {run_id} did not finish: {run}")


def test_eval_run_progress_results_and_compare(eval_app):
    key, other = new_user(eval_app, "evaluator"), new_user(eval_app, "other")
    ids = []
    for limit in (2, 3):
        resp = httpx.post(f"{eval_app.url}/api/eval-runs", headers=auth(key), json={"benchmark": "math500", "limit": limit})
        assert resp.status_code == 202, resp.text
        assert resp.json()["n_total"] == limit  # known from the start
        ids.append(resp.json()["id"])
    runs = [wait_done(eval_app, key, run_id) for run_id in ids]
    for run, limit in zip(runs, (2, 3), strict=True):
        assert run["status"] == "done", run
        assert run["n_done"] == run["n_total"] == limit
        assert 0.0 <= run["metrics"]["accuracy"] <= 1.0
    results = httpx.get(f"{eval_app.url}/api/eval-runs/{ids[1]}/results", headers=auth(key)).json()
    assert len(results) == 3 and all(r["completion"].endswith("$\\boxed{3}$.") for r in results)
    assert sum(r["passed"] for r in results) == round(runs[1]["metrics"]["accuracy"] * 3)
    cmp = httpx.get(f"{eval_app.url}/api/eval-runs/compare", params=[("ids", ids[0]), ("ids", ids[1])],
                    headers=auth(key)).json()
    assert cmp["benchmark"] == "math500" and [r["id"] for r in cmp["runs"]] == ids
    only_in_second = set(r["problem_id"] for r in results) - {
        r["problem_id"] for r in httpx.get(f"{eval_app.url}/api/eval-runs/{ids[0]}/results", headers=auth(key)).json()}
    assert set(cmp["differing"]) >= only_in_second and len(only_in_second) == 1
    assert httpx.get(f"{eval_app.url}/api/eval-runs/{ids[0]}", headers=auth(other)).status_code == 404
    assert httpx.get(f"{eval_app.url}/api/eval-runs/compare", params=[("ids", ids[0]), ("ids", ids[1])],
                     headers=auth(other)).status_code == 404


def test_bad_eval_request_is_422(eval_app):
    key = new_user(eval_app, "evaluator")
    resp = httpx.post(f"{eval_app.url}/api/eval-runs", headers=auth(key), json={"benchmark": "mmlu"})
    assert resp.status_code == 422 and "benchmark" in resp.json()["detail"]


def test_cancel_ends_a_running_eval_run(eval_app):
    key = new_user(eval_app, "evaluator")
    SLOW["on"] = True
    try:
        run = httpx.post(f"{eval_app.url}/api/eval-runs", headers=auth(key),
                         json={"benchmark": "math500", "limit": 40, "concurrency": 1}).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{eval_app.url}/api/eval-runs/{run['id']}", headers=auth(key)).json()["n_done"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        cancelled = httpx.post(f"{eval_app.url}/api/eval-runs/{run['id']}/cancel", headers=auth(key), timeout=30)
    finally:
        SLOW["on"] = False
    assert cancelled.status_code == 200, cancelled.text
    final = cancelled.json()
    assert final["status"] == "cancelled" and 1 <= final["n_done"] < 40 and final["n_total"] == 40
    assert wait_done(eval_app, key, run["id"])["status"] == "cancelled"
