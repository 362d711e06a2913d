"""Two app processes on one PostgreSQL database (how the app scales past one machine): 20 queued
eval runs are each executed exactly once, and both processes take part."""
import time

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.db.models import Job, JobStatus
from tests.app.conftest import auth, fresh_postgres_database, new_user, start_app, stop_app
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer

RUNS = 20


@pytest.fixture
def postgres_url():
    with fresh_postgres_database("two_apps") as url:
        yield url


def test_two_apps_on_one_postgres_run_each_of_20_eval_runs_once(tmp_path, postgres_url):
    with ScriptedOpenAIServer(lambda body: Reply(content="    return None\n", delay_s=0.2)) as model:
        env = {"MODEL_BACKEND": "openai", "MODEL_BASE_URL": model.base_url, "MODEL_NAME": "scripted-model",
               "RATE_LIMIT_PER_MINUTE": "100000", "JOB_HEARTBEAT_S": "0.5"}
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
        apps = [start_app(tmp_path / name, postgres_url, env) for name in ("a", "b")]
        try:
            key = new_user(apps[0], "two")
            ids = [httpx.post(f"{apps[i % 2].url}/api/eval-runs", headers=auth(key),
                              json={"benchmark": "humaneval", "limit": 1}).json()["id"] for i in range(RUNS)]
            deadline = time.monotonic() + 300
            while True:
                runs = [httpx.get(f"{apps[1].url}/api/eval-runs/{run_id}", headers=auth(key)).json() for run_id in ids]
                if all(r["status"] in ("done", "failed", "cancelled") for r in runs):
                    break
                assert time.monotonic() < deadline, [r["status"] for r in runs]
                time.sleep(0.5)
            results = [httpx.get(f"{apps[0].url}/api/eval-runs/{run_id}/results", headers=auth(key)).json()
                       for run_id in ids]
        finally:
            for app in apps:
                stop_app(app)
        generations = len(model.chat_requests)
    assert [r["status"] for r in runs] == ["done"] * RUNS
    assert [len(r) for r in results] == [1] * RUNS
    assert generations == RUNS  # no run was generated twice
    engine = create_engine(postgres_url)
    with Session(engine) as db:
        jobs = db.scalars(select(Job).where(Job.kind == "eval_run")).all()
    engine.dispose()
    assert len(jobs) == RUNS and {j.status for j in jobs} == {JobStatus.done} and {j.attempts for j in jobs} == {1}
    claimed = [app.log().count('"job claimed"') for app in apps]
    assert sum(claimed) == RUNS and all(c > 0 for c in claimed), claimed  # both processes took part
