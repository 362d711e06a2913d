"""Self-checks that must be exact: every canonical solution passes its own benchmark.

Each run starts from an empty cache, so it also computes the reference (expected outputs and time
limits) from the canonical solutions in the sandbox, then grades them as if a model had written them.
"""
import os

from evals.datasets import load_problems
from evals.execution import ExecConfig
from evals.harness import grade_completions


def canonical(benchmark: str) -> dict[str, list[str]]:
    return {p.task_id: [p.canonical_solution] for p in load_problems(benchmark)}


def test_humaneval_canonical_solutions_pass_all_164(tmp_path):
    result = grade_completions("humaneval", canonical("humaneval"),
                               exec_config=ExecConfig(workers=os.cpu_count() or 2, cache_dir=tmp_path))
    failed = [(s["problem_id"], s["error"]) for s in result["samples"] if not s["passed"]]
    assert failed == [] and len(result["samples"]) == 164
    assert result["metrics"] == {"pass@1": 1.0}


def test_humaneval_plus_canonical_solutions_pass_every_test(tmp_path):
    result = grade_completions("humaneval_plus", canonical("humaneval_plus"),
                               exec_config=ExecConfig(workers=os.cpu_count() or 2, cache_dir=tmp_path))
    failed = [(s["problem_id"], s["error"]) for s in result["samples"] if not s["passed"]]
    assert failed == [] and len(result["samples"]) == 164
    assert sum(s["n_tests"] for s in result["samples"]) == 1570 + 122683
    assert all(set(s["tests"]) == {"P"} for s in result["samples"])
    assert result["metrics"] == {"pass@1": 1.0, "base_pass@1": 1.0}
