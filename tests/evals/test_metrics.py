"""pass@k estimator and metric aggregation."""
import itertools
from math import comb

import pytest

from evals.metrics import compute_metrics, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    """Probability that a random k-subset of n samples (c correct) holds a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (10, 0, 3), (10, 10, 10), (7, 2, 6), (12, 5, 4)])
def test_unbiased_estimator(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k))
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 10)


def test_metrics_only_report_k_that_n_allows():
    samples = [{"problem_id": f"p{p}", "sample_index": i, "passed": (p + i) % 4 == 0, "base_passed": True}
               for p in range(3) for i in range(10)]
    metrics = compute_metrics("humaneval_plus", samples)
    assert set(metrics) == {"pass@1", "pass@10", "base_pass@1", "base_pass@10"}
    expected = sum(sum((p + i) % 4 == 0 for i in range(10)) / 10 for p in range(3)) / 3
    assert metrics["pass@1"] == pytest.approx(expected)
    assert metrics["base_pass@1"] == 1.0


def test_math_breakdown():
    samples = [
        {"problem_id": "a", "sample_index": 0, "passed": True, "subject": "Algebra", "level": 1},
        {"problem_id": "b", "sample_index": 0, "passed": False, "subject": "Algebra", "level": 2},
        {"problem_id": "c", "sample_index": 0, "passed": True, "subject": "Geometry", "level": 2},
    ]
    metrics = compute_metrics("math500", samples)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["by_subject"]["Algebra"] == {"n_samples": 2, "correct": 1, "accuracy": 0.5}
    assert metrics["by_level"]["2"]["accuracy"] == 0.5
