"""Grades completions into sample records, for any benchmark, without blocking the event loop.

Code runs in the sandbox from a thread pool (one sandboxed process per program). MATH answers
are checked with math-verify, whose timeouts are signal-based and work only in a main thread: when
the harness runs in the main thread (CLI, tests) each answer is graded there, inline (a few ms);
when it runs in another thread (the app's worker threads) answers go to a one-process pool whose
worker grades in its own main thread, so grading stays bounded either way.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from evals.code_grader import grade_program
from evals.datasets import CodeProblem, MathProblem
from evals.execution import ExecConfig
from evals.extract import build_program
from evals.oracle import OracleEntry, build_oracle
from tools.sandbox import Sandbox


class Grader:
    """Turns (problem, sample_index, completion) into the sample record stored in samples.jsonl.
    Use as a context manager; `prepare` must be awaited before grading code problems."""

    def __init__(self, benchmark: str, mode: str, exec_config: ExecConfig, data_sha256: str, math_timeout_s: int = 5):
        self.benchmark, self.mode, self.exec_config = benchmark, mode, exec_config
        self.data_sha256, self.math_timeout_s = data_sha256, math_timeout_s
        self._sandbox = Sandbox()
        self._oracle: dict[str, OracleEntry] = {}
        self._threads = ThreadPoolExecutor(max_workers=exec_config.workers, thread_name_prefix="evals-exec")
        self._processes: ProcessPoolExecutor | None = None
        if benchmark == "math500" and threading.current_thread() is not threading.main_thread():
            self._processes = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    async def prepare(self, problems: list) -> None:
        """Compute (or load from cache) the code benchmarks' reference outputs and time limits."""
        code = [p for p in problems if isinstance(p, CodeProblem) and p.task_id not in self._oracle]
        if code:
            loop = asyncio.get_running_loop()
            entries = await loop.run_in_executor(
                None, build_oracle, self.benchmark, code, self.data_sha256, self._sandbox, self.exec_config
            )
            self._oracle.update(entries)

    async def grade(self, problem: CodeProblem | MathProblem, sample_index: int, completion: str) -> dict:
        loop = asyncio.get_running_loop()
        record = {"problem_id": problem.problem_id, "sample_index": sample_index, "completion": completion}
        if isinstance(problem, MathProblem):
            from evals.math_grader import grade_math  # math-verify + sympy: seconds to import, only for MATH

            if self._processes is None:
                verdict = grade_math(problem, completion, self.math_timeout_s)
            else:
                verdict = await loop.run_in_executor(self._processes, grade_math, problem, completion, self.math_timeout_s)
            record.update(verdict.as_dict(), subject=problem.subject, level=problem.level)
        else:
            program = build_program(problem, completion, self.mode)
            verdict = await loop.run_in_executor(
                self._threads, grade_program, self.benchmark, problem, program,
                self._oracle[problem.task_id], self._sandbox, self.exec_config,
            )
            record.update(verdict.as_dict(), program=program)
        record["verdict"] = "pass" if record["passed"] else "fail"
        return record

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
