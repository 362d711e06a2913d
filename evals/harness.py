"""Runs a benchmark end to end: generate over HTTP, grade, record, summarise; resumable."""
from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.datasets import BENCHMARKS, DATA_FILES, DEFAULT_DATA_DIR, load_problems
from evals.execution import ExecConfig
from evals.generation import EndpointConfig, Generator, ModelError
from evals.grading import Grader
from evals.metrics import compute_metrics
from evals.progress import RunProgress
from evals.prompts import build_request
from evals.store import RunStore

MAX_ERRORS_IN_SUMMARY = 10
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


def run_benchmark(config: RunConfig, progress: RunProgress | None = None, on_sample: OnSample | None = None,
                  stop: threading.Event | None = None) -> dict:
    """Run (or resume) `config` and return its summary (also written to out_dir/summary.json).
    Samples whose generation failed are left out of samples.jsonl, so a rerun retries them;
    the summary's `complete` is False while any are missing. `progress` hears of every event,
    starting with the run's size before anything slow happens. `on_sample` sees each graded sample
    once it is stored; setting `stop` abandons the samples still in flight (a resume redoes them)."""
    progress = progress or RunProgress()
    started = time.monotonic()
    try:
        progress.set_stage("loading data")
        problems = load_problems(config.benchmark, config.data_dir)[: config.limit]
        with RunStore(config.out_dir, config.identity()) as store:
            done = store.done()
            pending = [(p, i) for p in problems for i in range(config.samples) if (p.problem_id, i) not in done]
            progress.start(len(problems) * config.samples, len(problems) * config.samples - len(pending))
            timings = {"prepare_s": 0.0, "generate_and_grade_s": 0.0}
            hooks = _Hooks(progress, on_sample, stop)
            errors = asyncio.run(_generate_and_grade(config, pending, store, hooks, timings)) if pending else []
            in_scope = {p.problem_id for p in problems}
            samples = [s for s in store.samples if s["problem_id"] in in_scope and s["sample_index"] < config.samples]
            timings.update(elapsed_s=time.monotonic() - started, session_tokens=progress.tokens)
            summary = build_summary(config, len(problems), samples, errors, timings)
            store.write_summary(summary)
    finally:
        progress.set_stage("done")
        progress.close()
    return summary


@dataclass(frozen=True)
class _Hooks:
    progress: RunProgress
    on_sample: OnSample | None
    stop: threading.Event | None


async def _stop_when_set(stop: threading.Event, tasks: list[asyncio.Task]) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()


async def _generate_and_grade(config: RunConfig, pending: list, store: RunStore, hooks: _Hooks,
                              timings: dict) -> list[str]:
    """Generate and grade every pending (problem, sample_index); returns the generation errors."""
    errors: list[str] = []
    prepare_started = time.monotonic()
    with Grader(config.benchmark, config.mode, config.exec, DATA_FILES[config.benchmark][1],
                config.math_timeout_s) as grader:
        if config.benchmark != "math500":
            hooks.progress.set_stage("computing reference outputs")
        await grader.prepare(sorted({p.problem_id: p for p, _ in pending}.values(), key=lambda p: p.problem_id))
        timings["prepare_s"] = time.monotonic() - prepare_started
        hooks.progress.set_stage("generating")
        work_started = time.monotonic()
        async with Generator(config.endpoint) as generator:

            async def one(problem, index: int) -> None:
                seed = None if config.seed is None else config.seed + index
                asked = time.monotonic()
                try:
                    text, tokens = await generator.generate(build_request(problem, config.mode), seed=seed)
                except ModelError as exc:
                    errors.append(f"{problem.problem_id}#{index}: {exc}")
                    return
                generation_s = time.monotonic() - asked
                hooks.progress.on_generated(tokens)
                record = await grader.grade(problem, index, text)
                record.update(generation_s=round(generation_s, 3), completion_tokens=tokens)
                store.append(record)
                if hooks.on_sample is not None:
                    hooks.on_sample(record)
                hooks.progress.on_graded(record["passed"])

            tasks = [asyncio.create_task(one(p, i)) for p, i in pending]
            watcher = asyncio.create_task(_stop_when_set(hooks.stop, tasks)) if hooks.stop is not None else None
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            if watcher is not None:
                watcher.cancel()
            failures = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
            if failures:
                raise failures[0]
        timings["generate_and_grade_s"] = time.monotonic() - work_started
    return errors


def build_summary(config: RunConfig, n_problems: int, samples: list[dict], errors: list[str], timings: dict) -> dict:
    """summary.json's content (contract 4: benchmark, model, n_problems, metrics) with the timings of
    this session (`elapsed_s`, `prepare_s`, `generate_and_grade_s`, tokens and tokens/s) and of the
    samples (sums over samples.jsonl, resumed ones included)."""
    expected = n_problems * config.samples
    work_s = timings.get("generate_and_grade_s", 0.0)
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
        "elapsed_s": round(timings.get("elapsed_s", 0.0), 2),
        "timings": {
            "prepare_s": round(timings.get("prepare_s", 0.0), 2),
            "generate_and_grade_s": round(work_s, 2),
            "session_completion_tokens": timings.get("session_tokens", 0),
            "session_tokens_per_s": round(timings.get("session_tokens", 0) / work_s, 1) if work_s else None,
            "completion_tokens": sum(s.get("completion_tokens", 0) for s in samples),
            "generation_s_median": _median([s["generation_s"] for s in samples if "generation_s" in s]),
            "grading_s_median": _median([s["duration_s"] for s in samples if "duration_s" in s]),
        },
    }



def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


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
