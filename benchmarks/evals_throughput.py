"""Throughput of the evals code-execution path: every HumanEval (and optionally HumanEval+)
canonical solution graded in the sandbox, one sandboxed process per problem, `--workers` at a time.

    .venv/bin/python benchmarks/evals_throughput.py --workers 2 [--plus]

Prints one JSON line per phase: the reference pass (canonical solutions run once to time them and,
for HumanEval+, to compute expected outputs; cached afterwards) and the grading pass (what every
model run pays), with the CPU seconds spent (this process and the sandboxed ones): on a shared
machine, cpu_seconds / cores bounds what an idle machine would take. The figure the issue asks
for is `grade` for humaneval with 2 workers.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from evals.datasets import DATA_FILES, load_problems
from evals.execution import ExecConfig
from evals.harness import grade_completions
from evals.oracle import build_oracle
from tools.sandbox import Sandbox


def _cpu_seconds() -> float:
    """CPU time of this process and of every finished sandboxed descendant."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def measure(benchmark: str, workers: int, cache_dir: Path) -> list[dict]:
    """Time the reference pass and the grading pass of all canonical solutions of `benchmark`."""
    problems = load_problems(benchmark)
    config = ExecConfig(workers=workers, cache_dir=cache_dir)
    started = time.perf_counter()
    build_oracle(benchmark, problems, DATA_FILES[benchmark][1], Sandbox(), config)
    reference_s = time.perf_counter() - started
    started, cpu_before = time.perf_counter(), _cpu_seconds()
    result = grade_completions(benchmark, {p.task_id: [p.canonical_solution] for p in problems}, exec_config=config)
    grade_s, grade_cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
    passed = sum(s["passed"] for s in result["samples"])
    n_tests = sum(s["n_tests"] for s in result["samples"])
    return [
        {"benchmark": benchmark, "phase": "reference", "workers": workers, "seconds": round(reference_s, 2)},
        {"benchmark": benchmark, "phase": "grade", "workers": workers, "seconds": round(grade_s, 2),
         "problems": len(problems), "passed": passed, "tests": n_tests,
         "problems_per_s": round(len(problems) / grade_s, 2), "cpu_seconds": round(grade_cpu, 2)},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plus", action="store_true", help="also HumanEval+ (about 124k tests; minutes)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        for benchmark in ["humaneval"] + (["humaneval_plus"] if args.plus else []):
            for row in measure(benchmark, args.workers, Path(cache)):
                print(json.dumps({**row, "load_avg_1m_before": round(load, 2)}), flush=True)


if __name__ == "__main__":
    main()
