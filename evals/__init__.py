"""HumanEval / HumanEval+ / MATH-500 harness against any OpenAI-compatible endpoint.

Python API (the CLI in evals/cli.py is a thin layer over it):

- `run_benchmark(RunConfig(...), progress=None) -> summary dict`: generate, grade, record; resumable.
- `grade_completions(benchmark, {problem_id: [completion, ...]}) -> {"metrics", "samples"}`.
- `load_run(out_dir) -> {"run", "summary", "samples"}`: a run directory as plain dicts.
- `write_report([run_dir, ...], "report.html")`.

See docs/EVALS.md.
"""
from evals.execution import ExecConfig
from evals.generation import EndpointConfig
from evals.harness import RunConfig, grade_completions, run_benchmark
from evals.report import write_report
from evals.store import load_run

__all__ = ["EndpointConfig", "ExecConfig", "RunConfig", "grade_completions", "load_run", "run_benchmark", "write_report"]
