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

from tools.sandbox import Sandbox, SandboxLimits

RUNNER_PATH = Path(__file__).resolve().parent / "sandbox_runner.py"


@dataclass(frozen=True)
class ExecConfig:
    """How programs are executed.

    The per-test limit is EvalPlus's rule, max(min_time_limit, time_limit_factor x the canonical
    solution's time), measured in CPU seconds of the test process (so a loaded machine does not fail
    correct code); each test also has a wall-clock backstop of wall_slack + wall_factor x that limit
    (for code that sleeps). A whole program gets at most program_cap seconds of tests.
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
    T time limit, S skipped after a time-out. `crash` says why no report came back (the process died or was killed)."""

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


def sandbox_limits(cpu_limits: list[float], config: ExecConfig) -> SandboxLimits:
    """Whole-process limits for a run whose tests have `cpu_limits`."""
    tests_cpu = min(config.program_cap, sum(cpu_limits))
    cpu = tests_cpu + config.load_limit + 2.0
    return SandboxLimits(
        cpu_seconds=cpu,
        wall_seconds=2 * cpu + 5.0,
        memory_bytes=config.memory_bytes,
        max_output_bytes=256 << 10,
        network=False,
    )


def run_task(sandbox: Sandbox, task: dict, config: ExecConfig) -> ExecReport:
    """Run `task` (see sandbox_runner's docstring) in the sandbox and parse its report.

    Never raises because of what the program did: a crash, a kill or garbage output becomes an
    all-failed report with `crash` set.
    """
    n_tests = 1 if task["mode"] == "check" else len(task["inputs"])
    nonce = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix="evals-"))
    try:
        (workdir / "runner.py").write_bytes(RUNNER_PATH.read_bytes())
        payload = pickle.dumps({**task, "nonce": nonce}, protocol=pickle.HIGHEST_PROTOCOL)
        (workdir / "task.pkl").write_bytes(payload)
        result = sandbox.run(
            [sys.executable, "-I", "runner.py"],
            cwd=str(workdir),
            limits=sandbox_limits(task["cpu_limits"], config),
        )
        report = _parse_report(result.stdout)
        if report is not None and report.get("nonce") != nonce:
            return ExecReport("F" * n_tests, crash="the test report was not written by the test runner",
                              duration_s=result.duration_s)
        if report is None:
            reason = result.killed_reason or ("timed out" if result.timed_out else f"exit code {result.returncode}")
            return ExecReport("F" * n_tests, crash=f"test process died without a report ({reason})",
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
            _attach_outputs(parsed, workdir / "outputs.pkl")
        return parsed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _parse_report(stdout: str) -> dict | None:
    try:
        report = json.loads(stdout)
    except (json.JSONDecodeError, TypeError):
        return None
    return report if isinstance(report, dict) else None


def _attach_outputs(report: ExecReport, path: Path) -> None:
    """Load a trusted (canonical-solution) run's outputs and CPU times."""
    if not path.is_file():
        report.crash = report.crash or "the reference run wrote no outputs"
        return
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    report.outputs, report.cpu_times, report.fingerprinted = data["outputs"], data["cpu_times"], data["fingerprinted"]
