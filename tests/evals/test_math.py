"""MATH-500 grading: math-verify equivalence, the main-thread rule, and the exact self-checks."""
import threading

import pytest

from evals.datasets import load_problems
from evals.harness import grade_completions
from evals.math_grader import answers_match


@pytest.mark.parametrize("predicted,reference", [
    (r"\frac{1}{2}", "0.5"), (r"\dfrac12", r"\frac{1}{2}"), ("2\\sqrt{3}", "\\sqrt{12}"),
    ("x^2+2x+1", "(x+1)^2"), ("(1,2)", "(1, 2)"), (r"90^\circ", "90"),
])
def test_equivalent_answers(predicted, reference):
    assert answers_match(predicted, reference)


@pytest.mark.parametrize("predicted,reference", [("3", "2"), (r"\frac{1}{3}", "0.5"), ("x+1", "x"), ("(1,2)", "(2,1)")])
def test_different_answers(predicted, reference):
    assert not answers_match(predicted, reference)


def test_grading_outside_the_main_thread_is_refused():
    errors = []
    thread = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, answers_match, "1", "1")))
    thread.start()
    thread.join()
    assert errors and "main thread" in str(errors[0].value)


def test_all_500_reference_solutions_score_1():
    problems = load_problems("math500")
    result = grade_completions("math500", {p.unique_id: [p.solution] for p in problems})
    assert result["metrics"]["accuracy"] == 1.0 and len(result["samples"]) == 500
    assert all(s["extracted"] == s["reference"] for s in result["samples"])
    assert sum(v["n_samples"] for v in result["metrics"]["by_level"].values()) == 500


def test_wrong_answers_score_0():
    problems = load_problems("math500")[:60]
    wrong = {p.unique_id: [f"Therefore the answer is $\\boxed{{{p.answer}+1}}$."] for p in problems}
    wrong[problems[0].unique_id] = ["I cannot solve this."]
    result = grade_completions("math500", wrong)
    assert result["metrics"]["accuracy"] == 0.0
    assert result["samples"][0]["extracted"] is None
