"""Runs a benchmark end to end: generate over HTTP, grade, record, summarise; resumable."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.datasets import BENCHMARKS, DATA_FILES, DEFAULT_DATA_DIR, load_problems
from evals.execution import ExecConfig
from evals.generation import EndpointConfig, GenerationError, Generator
from evals.grading import Grader
from evals.metrics import compute_metrics
from evals.prompts import build_request
from evals.store import RunStore

MAX_ERRORS_IN_SUMMARY = 10
Progress = Callable[[int, int], None]
OnSample = Callable[[dict], None]


@dataclass(frozen=True)
class RunConfig:
    """One benchmark run. `samples` completions per problem; `limit` keeps the first N problems;
    `seed`, when given, makes sample i of every problem ask for seed + i."""

    benchmark: str
    endpoint: EndpointConfig
    out_dir: Path
    mode: str = "chat"
    samples: int = 1
    limit: int | None = None
    seed: int | None = None
    exec: ExecConfig = field(default_factory=ExecConfig)
    data_dir: Path = DEFAULT_DATA_DIR
    math_timeout_s: int = 5

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
        if self.mode not in ("chat", "completion"):
            raise ValueError(f"mode must be 'chat' or 'completion', not {self.mode!r}")
        if self.samples < 1:
            raise ValueError("samples must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")

    def identity(self) -> dict:
        """What must not change between a run and its resumption."""
        ep = self.endpoint
        return {"benchmark": self.benchmark, "model": ep.model, "mode": self.mode, "temperature": ep.temperature,
                "top_p": ep.top_p, "max_tokens": ep.max_tokens, "seed": self.seed}


def run_benchmark(config: RunConfig, progress: Progress | None = None, on_sample: OnSample | None = None,
                  stop: threading.Event | None = None) -> dict:
    """Run (or resume) `config` and return its summary (also written to out_dir/summary.json).
    Samples whose generation failed are left out of samples.jsonl, so a rerun retries them;
    the summary's `complete` is False while any are missing. `on_sample` sees each graded sample
    once it is stored; setting `stop` abandons the samples still in flight (a resume redoes them)."""
    problems = load_problems(config.benchmark, config.data_dir)[: config.limit]
    with RunStore(config.out_dir, config.identity()) as store:
        done = store.done()
        pending = [(p, i) for p in problems for i in range(config.samples) if (p.problem_id, i) not in done]
        started = time.monotonic()
        hooks = _Hooks(progress, on_sample, stop)
        errors = asyncio.run(_generate_and_grade(config, pending, store, hooks)) if pending else []
        in_scope = {p.problem_id for p in problems}
        samples = [s for s in store.samples if s["problem_id"] in in_scope and s["sample_index"] < config.samples]
        summary = build_summary(config, len(problems), samples, errors, time.monotonic() - started)
        store.write_summary(summary)
    return summary


@dataclass(frozen=True)
class _Hooks:
    progress: Progress | None
    on_sample: OnSample | None
    stop: threading.Event | None


async def _stop_when_set(stop: threading.Event, tasks: list[asyncio.Task]) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()


async def _generate_and_grade(config: RunConfig, pending: list, store: RunStore, hooks: _Hooks) -> list[str]:
    """Generate and grade every pending (problem, sample_index); returns the generation errors."""
    errors: list[str] = []
    total, finished = len(pending), 0
    with Grader(config.benchmark, config.mode, config.exec, DATA_FILES[config.benchmark][1],
                config.math_timeout_s) as grader:
        await grader.prepare(sorted({p.problem_id: p for p, _ in pending}.values(), key=lambda p: p.problem_id))
        async with Generator(config.endpoint) as generator:

            async def one(problem, index: int) -> None:
                nonlocal finished
                seed = None if config.seed is None else config.seed + index
                try:
                    text = await generator.generate(build_request(problem, config.mode), seed=seed)
                except GenerationError as exc:
                    errors.append(f"{problem.problem_id}#{index}: {exc}")
                    return
                sample = await grader.grade(problem, index, text)
                store.append(sample)
                if hooks.on_sample is not None:
                    hooks.on_sample(sample)
                finished += 1
                if hooks.progress is not None:
                    hooks.progress(finished, total)

            tasks = [asyncio.create_task(one(p, i)) for p, i in pending]
            watcher = asyncio.create_task(_stop_when_set(hooks.stop, tasks)) if hooks.stop is not None else None
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            if watcher is not None:
                watcher.cancel()
            failures = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
            if failures:
                raise failures[0]
    return errors


def build_summary(config: RunConfig, n_problems: int, samples: list[dict], errors: list[str], elapsed_s: float) -> dict:
    """summary.json's content (contract 4: benchmark, model, n_problems, metrics)."""
    expected = n_problems * config.samples
    return {
        "benchmark": config.benchmark,
        "model": config.endpoint.model,
        "base_url": config.endpoint.base_url,
        "mode": config.mode,
        "temperature": config.endpoint.temperature,
        "max_tokens": config.endpoint.max_tokens,
        "samples_per_problem": config.samples,
        "n_problems": n_problems,
        "n_samples": len(samples),
        "n_missing": expected - len(samples),
        "complete": len(samples) == expected,
        "metrics": compute_metrics(config.benchmark, samples),
        "time_limits": {"min_seconds": config.exec.min_time_limit, "factor": config.exec.time_limit_factor,
                        "clock": "cpu"},
        "data_sha256": DATA_FILES[config.benchmark][1],
        "generation_errors": errors[:MAX_ERRORS_IN_SUMMARY],
        "elapsed_s": round(elapsed_s, 2),
    }


def grade_completions(
    benchmark: str,
    completions: dict[str, list[str]],
    mode: str = "completion",
    exec_config: ExecConfig | None = None,
    data_dir: Path = DEFAULT_DATA_DIR,
    math_timeout_s: int = 5,
) -> dict:
    """Grade completions produced elsewhere ({problem_id: [completion, ...]}) with the same
    pipeline as `run_benchmark`; returns {"metrics": ..., "samples": [...]} as plain dicts."""
    by_id = {p.problem_id: p for p in load_problems(benchmark, data_dir)}
    unknown = sorted(set(completions) - set(by_id))
    if unknown:
        raise ValueError(f"unknown problem ids for {benchmark}: {', '.join(unknown[:5])}")
    work = [(by_id[pid], i, text) for pid, texts in completions.items() for i, text in enumerate(texts)]
    samples = asyncio.run(_grade_all(benchmark, mode, exec_config or ExecConfig(), data_dir, math_timeout_s, work))
    return {"metrics": compute_metrics(benchmark, samples), "samples": samples}


async def _grade_all(benchmark: str, mode: str, exec_config: ExecConfig, data_dir: Path, math_timeout_s: int,
                     work: list) -> list[dict]:
    with Grader(benchmark, mode, exec_config, DATA_FILES[benchmark][1], math_timeout_s) as grader:
        await grader.prepare([problem for problem, _, _ in work])
        return list(await asyncio.gather(*(grader.grade(p, i, text) for p, i, text in work)))
