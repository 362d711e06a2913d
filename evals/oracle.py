"""Reference results for the code benchmarks, computed by running each canonical solution.

HumanEval: the canonical solution's CPU time on the original `check`, which sets the time limit.
HumanEval+: the canonical solution's output on every base and plus input (the expected outputs;
the dataset ships inputs only) and its CPU time per input. Both are cached in
`ExecConfig.cache_dir` under a name that hashes the data file and the runner, so a change to
either recomputes them.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from evals.datasets import CodeProblem
from evals.execution import RUNNER_PATH, ExecConfig, run_batch
from tools.sandbox import Sandbox


# Canonical solutions run in a few batches per worker (one sandboxed process each); several per
# worker so that one slow batch does not leave the other workers idle.
BATCHES_PER_WORKER = 4


class OracleError(RuntimeError):
    """A canonical solution failed its own tests, so no trustworthy reference exists."""


@dataclass(frozen=True)
class OracleEntry:
    """Expected outputs (io mode; empty for HumanEval's check mode), the canonical solution's
    CPU seconds per test, how many leading tests are EvalPlus's base tests (the rest are plus),
    and which expected outputs are stored as fingerprints because they are large."""

    expected: list
    cpu_times: list[float]
    n_base: int
    fingerprinted: list[int]

    def cpu_limits(self, config: ExecConfig) -> list[float]:
        """EvalPlus's per-test limit: max(min_time_limit, factor x canonical time)."""
        return [max(config.min_time_limit, config.time_limit_factor * t) for t in self.cpu_times]


def test_mode(benchmark: str) -> str:
    """HumanEval runs its original check(); HumanEval+ compares outputs input by input."""
    return "check" if benchmark == "humaneval" else "io"


def special_oracle(problem: CodeProblem) -> str | None:
    """HumanEval/32 (find_zero) has many valid answers: its outputs are checked by evaluating
    the polynomial at the returned point, as EvalPlus does, never compared with the canonical root."""
    return "find_zero" if problem.entry_point == "find_zero" else None


def problem_inputs(problem: CodeProblem) -> list:
    return list(problem.base_inputs) + list(problem.plus_inputs)


def _cache_key(benchmark: str, data_sha256: str) -> str:
    digest = hashlib.sha256()
    digest.update(benchmark.encode())
    digest.update(data_sha256.encode())
    digest.update(RUNNER_PATH.read_bytes())
    return digest.hexdigest()[:16]


def _reference_task(benchmark: str, problem: CodeProblem, config: ExecConfig) -> dict:
    mode = test_mode(benchmark)
    inputs = [] if mode == "check" else problem_inputs(problem)
    n_tests = 1 if mode == "check" else len(inputs)
    return {
        "mode": mode,
        "record": True,
        "program": problem.prompt + problem.canonical_solution,
        "entry_point": problem.entry_point,
        "test_code": problem.test,
        "inputs": inputs,
        "expected": [],
        "atol": problem.atol,
        "special": special_oracle(problem),
        "cpu_limits": [config.record_test_limit] * n_tests,
        "wall_limits": [config.record_test_limit * 2] * n_tests,
        "load_limit": config.load_limit,
    }


def _compute(benchmark: str, problems: list[CodeProblem], sandbox: Sandbox, config: ExecConfig) -> list[OracleEntry]:
    """Reference entries for a batch of problems, run in one sandboxed process."""
    reports = run_batch(sandbox, [_reference_task(benchmark, p, config) for p in problems], config)
    entries = []
    for problem, report in zip(problems, reports, strict=True):
        if not report.passed or report.cpu_times is None:
            raise OracleError(f"canonical solution of {problem.task_id} failed its own tests: {report.first_error()}")
        expected = [] if test_mode(benchmark) == "check" else report.outputs
        entries.append(OracleEntry(expected=expected, cpu_times=report.cpu_times, n_base=len(problem.base_inputs),
                                   fingerprinted=report.fingerprinted or []))
    return entries


def build_oracle(
    benchmark: str, problems: list[CodeProblem], data_sha256: str, sandbox: Sandbox, config: ExecConfig
) -> dict[str, OracleEntry]:
    """Reference entries for `problems`, from the cache where present, else computed in parallel."""
    cache_path = None
    cached: dict[str, OracleEntry] = {}
    if config.cache_dir is not None:
        cache_path = Path(config.cache_dir) / f"oracle-{benchmark}-{_cache_key(benchmark, data_sha256)}.pkl"
        if cache_path.is_file():
            with open(cache_path, "rb") as fh:
                cached = pickle.load(fh)
    missing = [p for p in problems if p.task_id not in cached]
    if missing:
        n_batches = min(len(missing), BATCHES_PER_WORKER * config.workers)
        batches = [missing[i::n_batches] for i in range(n_batches)]
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            results = list(pool.map(lambda batch: _compute(benchmark, batch, sandbox, config), batches))
        cached.update({p.task_id: e for batch, entries in zip(batches, results, strict=True) for p, e in zip(batch, entries, strict=True)})
        if cache_path is not None:
            _write_atomic(cache_path, cached)
    return {p.task_id: cached[p.task_id] for p in problems}


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
