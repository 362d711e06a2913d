"""Runs one program's tests in the sandbox: ships `sandbox_runner.py` and a pickled task into a
fresh working directory, runs it under `tools.sandbox`, and parses the per-test report."""
from __future__ import annotations

import json
import pickle
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.sandbox import Sandbox, SandboxLimits, SandboxResult

RUNNER_PATH = Path(__file__).resolve().parent / "sandbox_runner.py"


@dataclass(frozen=True)
class ExecConfig:
    """How programs are executed.

    The per-test limit is EvalPlus's rule, max(min_time_limit, time_limit_factor x the canonical
    solution's time), measured in CPU seconds of the test process (so a loaded machine does not fail
    correct code); each test also has a wall-clock backstop of wall_slack + wall_factor x that limit
    (for code that sleeps); loading the program gets load_limit seconds. The sandbox's own limits,
    a backstop for what the timers cannot stop (a long C call), allow min(program_cap, the sum of
    the per-test limits) + load_limit + 2 CPU seconds per program.
    """

    workers: int = 2
    min_time_limit: float = 0.2
    time_limit_factor: float = 4.0
    wall_factor: float = 5.0
    wall_slack: float = 1.0
    load_limit: float = 5.0
    program_cap: float = 60.0
    record_test_limit: float = 30.0
    memory_bytes: int = 2 << 30
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.min_time_limit <= 0 or self.time_limit_factor <= 0:
            raise ValueError("time limits must be positive")


@dataclass
class ExecReport:
    """What one sandboxed run reported. `results` has one letter per test: P passed, F failed,
    T time limit, S skipped after a time-out. `crash` says why no trustworthy report came back."""

    results: str
    errors: dict[str, str] = field(default_factory=dict)
    load_error: str | None = None
    crash: str | None = None
    outputs: list | None = None
    cpu_times: list[float] | None = None
    fingerprinted: list[int] | None = None
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and set(self.results) == {"P"}

    def first_error(self) -> str | None:
        """The most useful one-line reason for a failure, or None when everything passed."""
        if self.crash:
            return self.crash
        if self.load_error:
            return self.load_error
        if self.errors:
            index = min(self.errors, key=int)
            return f"test {index}: {self.errors[index]}"
        return None


def sandbox_limits(tasks: list[dict], config: ExecConfig) -> SandboxLimits:
    """Whole-run backstop limits for `tasks` (their own per-test timers normally end them first)."""
    cpu = sum(min(config.program_cap, sum(t["cpu_limits"])) + config.load_limit + 2.0 for t in tasks)
    return SandboxLimits(
        cpu_seconds=cpu,
        wall_seconds=2 * cpu + 5.0,
        memory_bytes=config.memory_bytes,
        max_output_bytes=256 << 10,
        network=False,
    )


def run_task(sandbox: Sandbox, task: dict, config: ExecConfig) -> ExecReport:
    """Run `task` (see sandbox_runner's docstring) in its own sandboxed process and parse its report.

    Never raises because of what the program did: a crash, a kill or garbage output becomes an
    all-failed report with `crash` set.
    """
    return _run(sandbox, [task], config, batch=False)[0]


def run_batch(sandbox: Sandbox, tasks: list[dict], config: ExecConfig) -> list[ExecReport]:
    """Run trusted reference tasks in one sandboxed process (one forked child each): what a fresh
    sandbox per canonical solution would give, without its start-up cost."""
    return _run(sandbox, tasks, config, batch=True)


def _run(sandbox: Sandbox, tasks: list[dict], config: ExecConfig, batch: bool) -> list[ExecReport]:
    nonces = [secrets.token_hex(16) for _ in tasks]
    stamped = [{**task, "nonce": nonce} for task, nonce in zip(tasks, nonces, strict=True)]
    workdir = Path(tempfile.mkdtemp(prefix="evals-"))
    try:
        (workdir / "runner.py").write_bytes(RUNNER_PATH.read_bytes())
        payload = {"batch": stamped} if batch else stamped[0]
        (workdir / "task.pkl").write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        result = sandbox.run([sys.executable, "-I", "runner.py"], cwd=str(workdir),
                             limits=sandbox_limits(tasks, config))
        try:
            raw = json.loads(result.stdout)
        except (json.JSONDecodeError, TypeError):
            raw = None
        if not batch:
            raws = [raw]
        elif isinstance(raw, list) and len(raw) == len(tasks):
            raws = raw
        else:  # the batch process died: every task is reported as such
            raws = [None] * len(tasks)
        return [
            _report(task, report, nonce, result, workdir / (f"outputs-{i}.pkl" if batch else "outputs.pkl"))
            for i, (task, report, nonce) in enumerate(zip(tasks, raws, nonces, strict=True))
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report(task: dict, report: object, nonce: str, result: SandboxResult, outputs_path: Path) -> ExecReport:
    """Check and parse one task's raw report."""
    n_tests = 1 if task["mode"] == "check" else len(task["inputs"])
    if not isinstance(report, dict):
        reason = result.killed_reason or ("timed out" if result.timed_out else f"exit code {result.returncode}")
        return ExecReport("F" * n_tests, crash=f"test process died without a report ({reason})",
                          duration_s=result.duration_s)
    if report.get("nonce") != nonce:
        return ExecReport("F" * n_tests, crash="the test report was not written by the test runner",
                          duration_s=result.duration_s)
    parsed = ExecReport(
        results=str(report.get("results", "")),
        errors={str(k): str(v) for k, v in (report.get("errors") or {}).items()},
        load_error=report.get("load_error"),
        duration_s=result.duration_s,
    )
    if len(parsed.results) != n_tests or set(parsed.results) - set("PFTS"):
        return ExecReport("F" * n_tests, crash="malformed test report", duration_s=result.duration_s)
    if task.get("record"):
        _attach_outputs(parsed, outputs_path)
    return parsed


def _attach_outputs(report: ExecReport, path: Path) -> None:
    """Load a trusted (canonical-solution) run's outputs and CPU times."""
    if not path.is_file():
        report.crash = report.crash or "the reference run wrote no outputs"
        return
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    report.outputs, report.cpu_times, report.fingerprinted = data["outputs"], data["cpu_times"], data["fingerprinted"]
