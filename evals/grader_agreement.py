"""Our MATH grader against math-verify alone, on a labelled set of tricky answer pairs.

`evals/data/math_answer_pairs.jsonl` holds replies and references whose verdict we decided by
hand (`correct`), in categories: fractions, intervals, sets, matrices, units, percent, choices,
text, expressions, and extraction (no box, several boxes). `compare()` grades each reply with
`grade_math` and with plain math-verify (`verify(parse(reference), parse(reply))`, its README's
usage on the whole reply) and reports how often each matches the label and where they differ.
`python -m evals.grader_agreement` prints it (the figures in docs/EVALS.md come from there).
Must run in the main thread (math-verify's timeouts are signal-based).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from math_verify import parse, verify

from evals.datasets import MathProblem
from evals.math_grader import grade_math

PAIRS_FILE = Path(__file__).parent / "data" / "math_answer_pairs.jsonl"


@dataclass(frozen=True)
class PairVerdict:
    id: str
    category: str
    reply: str
    reference: str
    label: bool
    grader: bool
    math_verify: bool


def load_pairs(path: Path = PAIRS_FILE) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _math_verify(reply: str, reference: str) -> bool:
    return bool(verify(parse(f"${reference}$"), parse(reply)))


def compare(pairs: list[dict]) -> list[PairVerdict]:
    verdicts = []
    for pair in pairs:
        problem = MathProblem(unique_id=pair["id"], problem="", solution="", answer=pair["reference"],
                              subject=pair["category"], level=0)
        verdicts.append(PairVerdict(pair["id"], pair["category"], pair["reply"], pair["reference"], pair["correct"],
                                    grade_math(problem, pair["reply"]).correct,
                                    _math_verify(pair["reply"], pair["reference"])))
    return verdicts


def report(verdicts: list[PairVerdict]) -> str:
    n = len(verdicts)
    grader = sum(v.grader == v.label for v in verdicts)
    plain = sum(v.math_verify == v.label for v in verdicts)
    agree = sum(v.grader == v.math_verify for v in verdicts)
    lines = [f"{n} labelled pairs: grader matches the label on {grader}/{n} ({100 * grader / n:.1f}%), "
             f"math-verify alone on {plain}/{n} ({100 * plain / n:.1f}%); the two agree on {agree}/{n} "
             f"({100 * agree / n:.1f}%).", "", "| id | reference | reply | label | grader | math-verify |",
             "|---|---|---|---|---|---|"]
    for v in verdicts:
        if v.grader != v.math_verify or v.grader != v.label:
            lines.append(f"| {v.id} | `{v.reference}` | `{v.reply}` | {v.label} | {v.grader} | {v.math_verify} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(compare(load_pairs())))
