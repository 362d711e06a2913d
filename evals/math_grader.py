"""MATH-500 grading: extract the final answer, decide equivalence with math-verify.

math-verify bounds its parsing and comparison with signal.alarm, which works only in the main
thread; `grade_math` must therefore be called from the main thread (the harness does: the asyncio
loop runs there and grades each reply as it arrives). Called from another thread it raises.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from evals.datasets import MathProblem
from evals.extract import extract_answer

_EXTRACTION = [LatexExtractionConfig(), ExprExtractionConfig()]


@dataclass(frozen=True)
class MathVerdict:
    correct: bool
    extracted: str | None
    reference: str

    def as_dict(self) -> dict:
        return {"passed": self.correct, "extracted": self.extracted, "reference": self.reference}


def _normalise(text: str) -> str:
    return "".join(text.split()).strip("$.")


def answers_match(predicted: str, reference: str, timeout_s: int = 5) -> bool:
    """True when `predicted` equals `reference` mathematically (math-verify on both, read as LaTeX
    or plain expressions); when math-verify cannot read the reference, exact text (ignoring spaces)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math grading uses signal-based timeouts and must run in the main thread")
    gold = parse(f"${reference}$", extraction_config=_EXTRACTION, parsing_timeout=timeout_s)
    if not gold:
        return _normalise(predicted) == _normalise(reference)
    pred = parse(f"${predicted}$", extraction_config=_EXTRACTION, parsing_timeout=timeout_s)
    return bool(pred) and verify(gold, pred, timeout_seconds=timeout_s)


def grade_math(problem: MathProblem, reply: str, timeout_s: int = 5) -> MathVerdict:
    """Grade one reply: its last \\boxed{} (else "the answer is ...") against the reference answer."""
    extracted = extract_answer(reply)
    correct = extracted is not None and answers_match(extracted, problem.answer, timeout_s)
    return MathVerdict(correct=correct, extracted=extracted, reference=problem.answer)
