"""Grades one program for a HumanEval / HumanEval+ problem by running its tests in the sandbox."""
from __future__ import annotations

from dataclasses import dataclass

from evals.datasets import CodeProblem
from evals.execution import ExecConfig, ExecReport, run_task
from evals.oracle import OracleEntry, problem_inputs, special_oracle, test_mode
from tools.sandbox import Sandbox


@dataclass(frozen=True)
class CodeVerdict:
    """`results` has one letter per test (P passed, F failed, T time limit,
    S skipped after a time-out); for HumanEval+ the first
    `n_base` tests are EvalPlus's base tests, so `base_passed` is the HumanEval-inputs score."""

    passed: bool
    base_passed: bool
    results: str
    n_base: int
    error: str | None
    duration_s: float

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "base_passed": self.base_passed,
            "tests": self.results,
            "n_tests": len(self.results),
            "n_passed": self.results.count("P"),
            "error": self.error,
            "duration_s": round(self.duration_s, 4),
        }


def candidate_task(benchmark: str, problem: CodeProblem, program: str, oracle: OracleEntry, config: ExecConfig) -> dict:
    """The sandbox_runner task that tests `program` against the oracle."""
    cpu_limits = oracle.cpu_limits(config)
    return {
        "mode": test_mode(benchmark),
        "record": False,
        "program": program,
        "entry_point": problem.entry_point,
        "test_code": problem.test,
        "inputs": [] if test_mode(benchmark) == "check" else problem_inputs(problem),
        "expected": oracle.expected,
        "fingerprinted": oracle.fingerprinted,
        "atol": problem.atol,
        "special": special_oracle(problem),
        "cpu_limits": cpu_limits,
        "wall_limits": [config.wall_slack + config.wall_factor * limit for limit in cpu_limits],
        "load_limit": config.load_limit,
    }


def grade_program(
    benchmark: str, problem: CodeProblem, program: str, oracle: OracleEntry, sandbox: Sandbox, config: ExecConfig
) -> CodeVerdict:
    """Run `program`'s tests; never raises because of what the program does."""
    report: ExecReport = run_task(sandbox, candidate_task(benchmark, problem, program, oracle, config), config)
    n_base = oracle.n_base if test_mode(benchmark) == "io" else len(report.results)
    return CodeVerdict(
        passed=report.passed,
        base_passed=bool(report.results) and set(report.results[:n_base]) == {"P"},
        results=report.results,
        n_base=n_base,
        error=report.first_error(),
        duration_s=report.duration_s,
    )
