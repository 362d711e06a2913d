"""The report a person reads: percentages beside published scores, labelled charts, comparison, drill-down."""
import json
import re

from evals.datasets import load_problems
from evals.report import write_report

PLUS = load_problems("humaneval_plus")


def run_dir(path, name, passed: dict[str, bool], mode="chat"):
    """A finished HumanEval+ run directory written by hand (what the harness writes)."""
    directory = path / name
    directory.mkdir()
    (directory / "run.json").write_text(json.dumps({"benchmark": "humaneval_plus", "model": "m", "mode": mode,
                                                    "temperature": 0.0}))
    samples = []
    for pid, ok in passed.items():
        samples.append({"problem_id": pid, "sample_index": 0, "passed": ok, "verdict": "pass" if ok else "fail",
                        "completion": f"reply for {pid}", "program": f"def solve():  # {pid}\n    pass\n",
                        "tests": "PP" if ok else "PPF", "n_tests": 3 - ok, "n_passed": 2,
                        "error": None if ok else "AssertionError: wrong output", "duration_s": 0.1,
                        "generation_s": 1.5, "completion_tokens": 40})
    (directory / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    rate = sum(passed.values()) / len(passed)
    (directory / "summary.json").write_text(json.dumps({
        "benchmark": "humaneval_plus", "model": "m", "mode": mode, "samples_per_problem": 1, "n_problems": len(passed),
        "complete": True, "metrics": {"pass@1": rate, "base_pass@1": rate}, "elapsed_s": 12.0,
        "timings": {"session_tokens_per_s": 33.3, "generation_s_median": 1.5}}))
    return directory


def test_html_report_has_percentages_comparison_and_drill_down(tmp_path):
    a = run_dir(tmp_path, "before", {"HumanEval/0": True, "HumanEval/1": False, "HumanEval/2": False})
    b = run_dir(tmp_path, "after", {"HumanEval/0": False, "HumanEval/1": True, "HumanEval/2": True})
    page = write_report([a, b], tmp_path / "report.html").read_text()
    assert "33.3%" in page and "66.7%" in page and "+33.3 points" in page
    changed = page[page.index("Problems whose pass rate changed (3)"):]
    assert re.search(r"HumanEval/0</td><td>100.0%</td><td>0.0%</td><td>worse", changed)
    assert re.search(r"HumanEval/1</td><td>0.0%</td><td>100.0%</td><td>better", changed)
    failing = f"test #2 of 3 (failed): input {PLUS[1].base_inputs[2]!r}"
    for text in ("reply for HumanEval/1", "def solve():  # HumanEval/1", "AssertionError: wrong output",
                 "1.5 s, 40 tokens", "33.3", "12.0 s"):
        assert text in page, text
    assert failing.replace("'", "&#x27;") in page
    assert page.count("<img") == 2  # the score beside the published one; pass@k (pass@1, base_pass@1)
    assert "none published" in page  # HumanEval+ has no published DeepSeek-V3 figure


def test_published_scores_are_in_the_same_unit_and_markdown_keeps_everything(tmp_path):
    from evals.report import PUBLISHED

    run = tmp_path / "code"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"benchmark": "humaneval", "model": "m", "mode": "chat"}))
    (run / "samples.jsonl").write_text(json.dumps({"problem_id": "HumanEval/0", "sample_index": 0, "passed": False,
                                                   "completion": "x", "tests": "F", "error": "boom"}) + "\n")
    (run / "summary.json").write_text(json.dumps({"benchmark": "humaneval", "model": "m", "mode": "chat",
                                                  "metrics": {"pass@1": 0.0}, "n_problems": 1}))
    text = write_report([run], tmp_path / "report.md").read_text()
    assert PUBLISHED[("humaneval", "chat")][1:] == ("pass@1", 82.6)
    assert "| 0.0% |" in text and "82.6% pass@1" in text and "boom" in text
    assert "test #0 of 1 (failed): check(candidate)" in text
    assert len(list((tmp_path / "report_files").glob("*.png"))) == 2
