"""Benchmark problems, loaded from the vendored files in evals/data with their sha256 checked."""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"

BENCHMARKS = ("humaneval", "humaneval_plus", "math500")

# file name and sha256 of the vendored file each benchmark reads (see evals/data/README.md)
DATA_FILES = {
    "humaneval": ("HumanEval.jsonl.gz", "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"),
    "humaneval_plus": ("HumanEvalPlus.jsonl.gz", "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101"),
    "math500": ("MATH500.jsonl", "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
}

# problems in each of those files (checked against the files in tests/evals/test_datasets.py), so a
# run's size is known before its data is loaded
PROBLEM_COUNTS = {"humaneval": 164, "humaneval_plus": 164, "math500": 500}


class DataIntegrityError(RuntimeError):
    """A vendored data file is missing or its sha256 differs from the recorded one."""


@dataclass(frozen=True)
class CodeProblem:
    """A HumanEval-style problem. `test` is HumanEval's original `check(candidate)` source;
    `base_inputs`/`plus_inputs` are EvalPlus's argument lists (HumanEval+ only)."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    base_inputs: list = field(default_factory=list, repr=False)
    plus_inputs: list = field(default_factory=list, repr=False)
    atol: float = 0.0

    @property
    def problem_id(self) -> str:
        return self.task_id


@dataclass(frozen=True)
class MathProblem:
    """A MATH-500 problem with its reference answer, subject and level (1-5)."""

    unique_id: str
    problem: str
    solution: str
    answer: str
    subject: str
    level: int

    @property
    def problem_id(self) -> str:
        return self.unique_id


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_file(benchmark: str, data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """Path of the benchmark's vendored file after checking that it exists and its sha256."""
    if benchmark not in DATA_FILES:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    name, expected = DATA_FILES[benchmark]
    path = Path(data_dir) / name
    if not path.is_file():
        raise DataIntegrityError(f"{path} is missing (the benchmark data ships in evals/data)")
    actual = sha256_of(path)
    if actual != expected:
        raise DataIntegrityError(f"{path} has sha256 {actual}, expected {expected}: the file is corrupt or was modified")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_problems(benchmark: str, data_dir: Path = DEFAULT_DATA_DIR) -> list[CodeProblem] | list[MathProblem]:
    """All problems of `benchmark` in dataset order."""
    records = _read_jsonl(data_file(benchmark, data_dir))
    if benchmark == "math500":
        return [
            MathProblem(r["unique_id"], r["problem"], r["solution"], r["answer"], r["subject"], int(r["level"]))
            for r in records
        ]
    if benchmark == "humaneval":
        return [
            CodeProblem(r["task_id"], r["prompt"], r["entry_point"], r["canonical_solution"], r["test"]) for r in records
        ]
    return [
        CodeProblem(
            r["task_id"], r["prompt"], r["entry_point"], r["canonical_solution"], r["test"],
            base_inputs=r["base_input"], plus_inputs=r["plus_input"], atol=float(r["atol"]),
        )
        for r in records
    ]
