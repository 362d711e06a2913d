"""Scores from graded samples: the unbiased pass@k estimator, accuracy, MATH breakdowns."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

K_VALUES = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c are correct (Chen et al., 2021):
    1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _counts(samples: list[dict], key: str) -> dict[str, tuple[int, int]]:
    per_problem: dict[str, list[bool]] = defaultdict(list)
    for sample in samples:
        per_problem[sample["problem_id"]].append(bool(sample[key]))
    return {pid: (len(v), sum(v)) for pid, v in per_problem.items()}


def pass_at_ks(samples: list[dict], key: str = "passed", prefix: str = "") -> dict[str, float]:
    """Mean pass@k over problems, for each k in (1, 10, 100) that every problem's n allows."""
    counts = _counts(samples, key)
    if not counts:
        return {}
    n_min = min(n for n, _ in counts.values())
    return {
        f"{prefix}pass@{k}": float(np.mean([pass_at_k(n, c, k) for n, c in counts.values()]))
        for k in K_VALUES
        if k <= n_min
    }


def accuracy_by(samples: list[dict], field: str) -> dict[str, dict]:
    """Accuracy over samples grouped by `field` (e.g. subject, level), keys sorted."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for sample in samples:
        groups[str(sample[field])].append(bool(sample["passed"]))
    return {
        key: {"n_samples": len(v), "correct": sum(v), "accuracy": sum(v) / len(v)} for key, v in sorted(groups.items())
    }


def compute_metrics(benchmark: str, samples: list[dict]) -> dict:
    """The summary's `metrics`: pass@k for code (HumanEval+ adds base_pass@k, the score on the
    original HumanEval inputs); accuracy, pass@k and per-subject/per-level accuracy for MATH."""
    metrics: dict = pass_at_ks(samples)
    if benchmark == "humaneval_plus":
        metrics.update(pass_at_ks(samples, key="base_passed", prefix="base_"))
    if benchmark == "math500":
        metrics["accuracy"] = float(np.mean([s["passed"] for s in samples])) if samples else 0.0
        metrics["by_subject"] = accuracy_by(samples, "subject")
        metrics["by_level"] = accuracy_by(samples, "level")
    return metrics
