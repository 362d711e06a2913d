"""Command line (contract 4):

    python -m evals run BENCH --base-url URL --model NAME [--api-key K] [--limit N] [--samples N]
        [--temperature T] [--concurrency C] [--mode chat|completion] --out DIR
    python -m evals report DIR [DIR ...] --out report.html|report.md
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from evals.datasets import BENCHMARKS, DataIntegrityError
from evals.execution import ExecConfig
from evals.generation import EndpointConfig
from evals.harness import RunConfig, run_benchmark
from evals.oracle import OracleError
from evals.progress import TqdmProgress
from evals.report import write_report
from evals.store import RunDirError

DEFAULT_MAX_TOKENS = {"humaneval": 1024, "humaneval_plus": 1024, "math500": 2048}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description="HumanEval / HumanEval+ / MATH-500 harness")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) a benchmark against an OpenAI-compatible endpoint")
    run.add_argument("benchmark", choices=BENCHMARKS)
    run.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8001/v1")
    run.add_argument("--model", required=True)
    run.add_argument("--api-key", default="EMPTY")
    run.add_argument("--out", required=True, type=Path, help="run directory; rerunning with it resumes")
    run.add_argument("--limit", type=_positive_int, help="only the first N problems")
    run.add_argument("--samples", type=_positive_int, default=1, help="completions per problem (for pass@k)")
    run.add_argument("--temperature", type=_non_negative_float, default=0.0)
    run.add_argument("--top-p", type=float, default=1.0)
    run.add_argument("--max-tokens", type=_positive_int, help="default: 1024 for code, 2048 for MATH")
    run.add_argument("--concurrency", type=_positive_int, default=8, help="requests in flight")
    run.add_argument("--mode", choices=("chat", "completion"), default="chat",
                     help="chat for instruct models, completion for base models")
    run.add_argument("--seed", type=int, help="sample i asks for seed + i")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    run.add_argument("--retries", type=int, default=4, help="retries per request on transient errors")
    run.add_argument("--no-progress", action="store_true", help="no live progress bar on stderr")
    run.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1, help="parallel test processes")
    run.add_argument("--cache-dir", type=Path, default=Path("var/evals-cache"),
                     help="where reference outputs of canonical solutions are cached")

    report = sub.add_parser("report", help="a report setting runs side by side")
    report.add_argument("runs", nargs="+", type=Path, help="run directories")
    report.add_argument("--out", required=True, type=Path, help="report.html or report.md")
    return parser


def _run(args: argparse.Namespace) -> int:
    endpoint = EndpointConfig(
        base_url=args.base_url, model=args.model, api_key=args.api_key, concurrency=args.concurrency,
        timeout_s=args.timeout, max_retries=args.retries, temperature=args.temperature, top_p=args.top_p,
        max_tokens=args.max_tokens or DEFAULT_MAX_TOKENS[args.benchmark],
    )
    config = RunConfig(
        benchmark=args.benchmark, endpoint=endpoint, out_dir=args.out, mode=args.mode, samples=args.samples,
        limit=args.limit, seed=args.seed, exec=ExecConfig(workers=args.workers, cache_dir=args.cache_dir),
    )

    summary = run_benchmark(config, progress=None if args.no_progress else TqdmProgress(f"{args.benchmark} {args.model}"))
    headline = {k: round(v, 4) for k, v in summary["metrics"].items() if isinstance(v, float)}
    print(f"{summary['benchmark']} {summary['model']}: {headline} over {summary['n_problems']} problems "
          f"-> {args.out / 'summary.json'}")
    if not summary["complete"]:
        print(f"error: {summary['n_missing']} samples could not be generated "
              f"(first: {summary['generation_errors'][:1]}); rerun the same command to resume", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        write_report(args.runs, args.out)
        print(f"report -> {args.out}")
        return 0
    except (ValueError, RunDirError, DataIntegrityError, OracleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
