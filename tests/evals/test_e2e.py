"""End to end over real HTTP: the harness against a scripted OpenAI-compatible server."""
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evals import EndpointConfig, ExecConfig, RunConfig, load_run, run_benchmark
from evals.cli import main as cli_main
from evals.datasets import load_problems
from evals.generation import Generator
from evals.prompts import build_request
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer

REPO = Path(__file__).resolve().parents[2]
HUMANEVAL = load_problems("humaneval")
MATH = load_problems("math500")


def problem_in(body: dict, problems):
    """The problem a request is about (its prompt text appears in the request)."""
    text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
    return next(p for p in problems if (p.prompt if hasattr(p, "prompt") else p.problem) in text)


def fenced(problem) -> str:
    return f"Here you go:\n```python\n{problem.prompt}{problem.canonical_solution}```\nIt works."


def wrong(problem) -> str:
    return f"```python\ndef {problem.entry_point}(*args):\n    return None\n```"


@pytest.fixture(scope="module")
def exec_config(tmp_path_factory):
    return ExecConfig(workers=2, cache_dir=tmp_path_factory.mktemp("oracle-cache"))


def config(server, out, benchmark, exec_config, **kw):
    endpoint = EndpointConfig(base_url=server.base_url, model="scripted-model", **kw.pop("endpoint", {}))
    return RunConfig(benchmark=benchmark, endpoint=endpoint, out_dir=out, exec=exec_config, **kw)


def test_chat_humaneval_over_http(tmp_path, exec_config):
    def script(body):
        problem = problem_in(body, HUMANEVAL)
        return fenced(problem) if int(problem.task_id.split("/")[1]) % 2 == 0 else wrong(problem)

    with ScriptedOpenAIServer(script) as server:
        summary = run_benchmark(config(server, tmp_path, "humaneval", exec_config, limit=6,
                                       endpoint={"max_tokens": 321, "temperature": 0.0}))
        bodies = server.chat_requests
    assert summary["metrics"] == {"pass@1": 0.5}
    assert summary["benchmark"] == "humaneval" and summary["model"] == "scripted-model"
    assert summary["n_problems"] == 6 and summary["complete"] is True
    assert len(bodies) == 6 and all(b["model"] == "scripted-model" and b["max_tokens"] == 321 for b in bodies)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["metrics"] == summary["metrics"]
    lines = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert sorted(s["problem_id"] for s in lines) == [f"HumanEval/{i}" for i in range(6)]
    for sample in lines:
        even = int(sample["problem_id"].split("/")[1]) % 2 == 0
        assert sample["verdict"] == ("pass" if even else "fail") and sample["passed"] is even
        problem = HUMANEVAL[int(sample["problem_id"].split("/")[1])]
        assert sample["completion"] and sample["program"].startswith(problem.prompt)
    run = load_run(tmp_path)
    assert run["summary"] == summary and len(run["samples"]) == 6


def test_completion_mode_samples_and_pass_at_k(tmp_path, exec_config):
    plus = load_problems("humaneval_plus")

    def script(body):
        problem = problem_in(body, plus)
        return problem.canonical_solution if body["seed"] % 2 == 0 else "    return None\n"

    with ScriptedOpenAIServer(script) as server:
        summary = run_benchmark(config(server, tmp_path, "humaneval_plus", exec_config, limit=3, samples=4,
                                       seed=100, mode="completion", endpoint={"temperature": 0.8}))
        bodies = [b for path, b in server.requests if path == "/v1/completions"]
    assert len(bodies) == 12 and not server.chat_requests
    assert {b["prompt"] for b in bodies} == {p.prompt for p in plus[:3]}
    assert all("\ndef " in b["stop"] and b["temperature"] == 0.8 for b in bodies)
    assert sorted(b["seed"] for b in bodies) == sorted([100, 101, 102, 103] * 3)
    # two of four samples right per problem: pass@1 = 0.5; k = 10, 100 need more samples
    assert summary["metrics"] == {"pass@1": 0.5, "base_pass@1": 0.5}


def test_math500_accuracy_and_breakdown(tmp_path, exec_config):
    right = {p.unique_id for p in MATH[:5]}

    def script(body):
        problem = problem_in(body, MATH)
        return problem.solution if problem.unique_id in right else "I think the answer is 123456789."

    with ScriptedOpenAIServer(script) as server:
        summary = run_benchmark(config(server, tmp_path, "math500", exec_config, limit=8))
        assert "\\boxed{}" in server.chat_requests[0]["messages"][0]["content"]
    metrics = summary["metrics"]
    assert metrics["accuracy"] == 5 / 8 and metrics["pass@1"] == 5 / 8
    assert sum(v["correct"] for v in metrics["by_subject"].values()) == 5
    assert sum(v["n_samples"] for v in metrics["by_level"].values()) == 8
    samples = load_run(tmp_path)["samples"]
    assert {s["extracted"] for s in samples if not s["passed"]} == {"123456789"}


def test_math500_from_a_worker_thread(tmp_path, exec_config):
    """The app runs the harness in a worker thread: math-verify then grades in a helper process."""
    results = []
    with ScriptedOpenAIServer(lambda body: problem_in(body, MATH).solution) as server:
        thread = threading.Thread(target=lambda: results.append(
            run_benchmark(config(server, tmp_path, "math500", exec_config, limit=3))))
        thread.start()
        thread.join(timeout=300)
    assert results and results[0]["metrics"]["accuracy"] == 1.0


def test_failures_retries_timeouts_and_resume(tmp_path, exec_config):
    problems = HUMANEVAL[:4]
    attempts: dict[str, int] = {}

    def flaky(body):
        problem = problem_in(body, problems)
        attempts[problem.task_id] = attempts.get(problem.task_id, 0) + 1
        if problem.task_id == "HumanEval/1" and attempts[problem.task_id] == 1:
            return Reply(status=503, content="warming up")  # retried, then fine
        if problem.task_id == "HumanEval/2":
            return Reply(status=500, content="always broken")  # gives up after the retries
        if problem.task_id == "HumanEval/3":
            return Reply(content=fenced(problem), delay_s=3.0)  # slower than the request timeout
        return fenced(problem)

    endpoint = {"max_retries": 2, "timeout_s": 1.0}
    with ScriptedOpenAIServer(flaky) as server:
        first = run_benchmark(config(server, tmp_path, "humaneval", exec_config, limit=4, endpoint=endpoint))
    assert attempts["HumanEval/1"] == 2 and attempts["HumanEval/2"] == 3  # the openai client's own retries
    assert first["complete"] is False and first["n_missing"] == 2 and first["n_samples"] == 2
    assert any("HTTP 500" in e for e in first["generation_errors"])
    assert any("timed out after 1s (2 retries)" in e for e in first["generation_errors"])

    with open(tmp_path / "samples.jsonl", "a") as fh:
        fh.write('{"problem_id": "HumanEval/2", "sample_ind')  # a write torn by a crash
    with ScriptedOpenAIServer(lambda body: fenced(problem_in(body, problems))) as server:
        second = run_benchmark(config(server, tmp_path, "humaneval", exec_config, limit=4))
        asked = sorted(problem_in(b, problems).task_id for b in server.chat_requests)
    assert asked == ["HumanEval/2", "HumanEval/3"]  # only what was missing
    assert second["complete"] is True and second["metrics"] == {"pass@1": 1.0}
    assert len(load_run(tmp_path)["samples"]) == 4


def cli(*args) -> subprocess.CompletedProcess:
    """`python -m evals ...` as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "evals", *map(str, args)], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def main(capsys, *args) -> tuple[int, str]:
    """The same CLI in-process (faster): exit code and stderr."""
    try:
        code = cli_main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def test_cli_run_resume_report_and_errors(tmp_path, exec_config, capsys):
    def script(body):
        if "messages" in body and "\\boxed" in body["messages"][0]["content"]:
            return problem_in(body, MATH).solution
        return fenced(problem_in(body, HUMANEVAL))

    code_dir, math_dir = tmp_path / "code", tmp_path / "math"
    common = ["--model", "scripted-model", "--cache-dir", exec_config.cache_dir, "--workers", "2"]
    with ScriptedOpenAIServer(script) as server:
        url = ["--base-url", server.base_url]
        out = cli("run", "humaneval", *url, *common, "--limit", "2", "--out", code_dir)
        assert "pass@1" in out.stdout
        assert main(capsys, "run", "math500", *url, *common, "--limit", "3", "--concurrency", "2",
                    "--out", math_dir)[0] == 0
        n_requests = len(server.requests)
        assert main(capsys, "run", "humaneval", *url, *common, "--limit", "2", "--out", code_dir)[0] == 0
        assert len(server.requests) == n_requests  # resumed: nothing left to ask
        code, err = main(capsys, "run", "humaneval", *url, "--model", "other", "--limit", "2", "--out", code_dir)
        assert code == 2 and "holds a different run" in err
    assert json.loads((code_dir / "summary.json").read_text())["metrics"] == {"pass@1": 1.0}
    assert json.loads((math_dir / "summary.json").read_text())["metrics"]["accuracy"] == 1.0

    cli("report", code_dir, math_dir, "--out", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img") == 4 and "MATH-500 accuracy by subject" in page and "DeepSeek-V3" in page
    assert main(capsys, "report", code_dir, math_dir, "--out", tmp_path / "report.md")[0] == 0
    assert len(list((tmp_path / "report_files").glob("*.png"))) == 4
    assert "| math" in (tmp_path / "report.md").read_text()

    code, err = main(capsys, "run", "humaneval", "--base-url", "http://127.0.0.1:9/v1", *common, "--limit", "1",
                     "--retries", "0", "--out", tmp_path / "down")
    assert code == 1 and "rerun the same command to resume" in err
    code, err = main(capsys, "run", "humaneval", "--base-url", "localhost:8000", *common, "--out", tmp_path / "x")
    assert code == 2 and "base URL must start with http" in err
    code, err = main(capsys, "run", "mmlu", "--base-url", "http://x/v1", "--model", "m", "--out", tmp_path / "y")
    assert code == 2 and "invalid choice" in err
    code, err = main(capsys, "report", tmp_path / "nothing", "--out", tmp_path / "r.html")
    assert code == 2 and "holds no evals run" in err
    code, err = main(capsys, "report", code_dir, "--out", tmp_path / "r.pdf")
    assert code == 2 and ".html or .md" in err


def test_concurrency_is_bounded():
    """8 requests that each take 0.5 s at the server, at most 2 in flight: at least 4 rounds."""
    async def ask_all(server) -> list[str]:
        endpoint = EndpointConfig(base_url=server.base_url, model="scripted-model", concurrency=2)
        async with Generator(endpoint) as generator:
            return await asyncio.gather(*(generator.generate(build_request(p, "chat")) for p in HUMANEVAL[:8]))

    with ScriptedOpenAIServer(lambda body: Reply(content="ok", delay_s=0.5)) as server:
        started = time.monotonic()
        replies = asyncio.run(ask_all(server))
        elapsed = time.monotonic() - started
    assert [text for text, _ in replies] == ["ok"] * 8 and len(server.chat_requests) == 8
    assert elapsed >= 4 * 0.5
