"""Evals a person can watch: progress from the first second (size known at once), timings."""
import os
import subprocess
import sys
import time
from pathlib import Path

from evals import EndpointConfig, RunConfig, run_benchmark
from evals.datasets import load_problems
from evals.progress import RunProgress
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer

REPO = Path(__file__).resolve().parents[2]
MATH = load_problems("math500")


def solution_for(body: dict) -> str:
    text = body["messages"][-1]["content"]
    return next(p.solution for p in MATH if p.problem in text)


class Recorder(RunProgress):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def changed(self) -> None:
        self.events.append((self.stage, self.total, self.done, self.generated))


def test_progress_knows_the_size_first_and_samples_carry_timings(tmp_path):
    progress = Recorder()
    with ScriptedOpenAIServer(solution_for) as server:
        config = RunConfig(benchmark="math500", out_dir=tmp_path, limit=3, samples=2,
                           endpoint=EndpointConfig(base_url=server.base_url, model="m", concurrency=2))
        summary = run_benchmark(config, progress)
    first_generation = next(i for i, e in enumerate(progress.events) if e[3] > 0)
    assert all(total == 6 for _, total, _, _ in progress.events[1:first_generation])  # known before any request
    assert progress.events[-1][0] == "done" and progress.done == 6 and progress.passed == 6 and progress.tokens > 0
    assert summary["timings"]["completion_tokens"] == progress.tokens
    assert summary["timings"]["session_tokens_per_s"] > 0 and summary["timings"]["generation_s_median"] >= 0
    # resuming: the size and the samples already done are known at once
    again = Recorder()
    with ScriptedOpenAIServer(solution_for) as server:
        run_benchmark(RunConfig(benchmark="math500", out_dir=tmp_path, limit=3, samples=2,
                                endpoint=EndpointConfig(base_url=server.base_url, model="m")), again)
    assert again.events[:2] == [("loading data", 0, 0, 0), ("loading data", 6, 6, 0)] and again.generated == 0


def test_cli_shows_a_live_bar_from_the_first_second(tmp_path):
    """The bar is there, with its size, while the first requests are still in flight (6 s each),
    and keeps refreshing (elapsed time, tokens/s) before any sample is done."""
    with ScriptedOpenAIServer(lambda body: Reply(content=solution_for(body), delay_s=6.0)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "evals", "run", "math500", "--base-url", server.base_url, "--model", "m",
             "--limit", "4", "--concurrency", "4", "--out", str(tmp_path / "run")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "160"})
        os.set_blocking(process.stderr.fileno(), False)
        early, deadline = "", time.monotonic() + 30
        while early.count("generating") < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            early += (process.stderr.read() or b"").decode()
        in_flight = len(server.chat_requests)
        out, rest = process.communicate(timeout=120)
    assert process.returncode == 0, rest
    assert "0/4" in early and early.count("generating") >= 2 and "tok/s" in early, early
    assert in_flight == 4 and "1/4" not in early
    assert "4/4" in rest.decode() and "passed 100%" in rest.decode()
    assert "accuracy" in out.decode()
