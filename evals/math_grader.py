"""MATH-500 grading: extract the final answer, decide equivalence with math-verify.

math-verify bounds its parsing and comparison with signal.alarm, which works only in the main
thread; `grade_math` must therefore be called from the main thread (the harness does: the asyncio
loop runs there and grades each reply as it arrives). Called from another thread it raises.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from evals.datasets import MathProblem
from evals.extract import all_boxed, extract_answer

_EXTRACTION = [LatexExtractionConfig(), ExprExtractionConfig()]
# A multiple-choice reference ("(C)", "\text{(C)}", "C") and a reply's choice ("\text{(C) Plane}", "(C)", "C").
_CHOICE_REFERENCE = re.compile(r"^\s*(?:\\text\{)?\s*\(?([A-E])\)?\s*\}?\s*$")
_CHOICE_REPLY = re.compile(r"^\s*(?:\\text(?:bf)?\{)?\s*\(?([A-E])(?:\)|\s*$|\s*\})")
_DECIMAL = re.compile(r"^\s*-?\d*\.\d+\s*$")
# A number followed by plain unit words ("32 dollars", "5 cm"): the words are dropped.
_NUMBER_WITH_WORDS = re.compile(r"^\s*(-?[\d.,/]+)\s+[A-Za-z][A-Za-z ]*$")


@dataclass(frozen=True)
class MathVerdict:
    correct: bool
    extracted: str | None
    reference: str

    def as_dict(self) -> dict:
        return {"passed": self.correct, "extracted": self.extracted, "reference": self.reference}


def _normalise(text: str) -> str:
    return "".join(text.split()).strip("$.")


def _rounds_an_exact_number(predicted: str, reference: str, gold: list) -> bool:
    """A decimal answer to an exact reference (no decimal point) that is not exactly equal to it:
    0.333333 for 1/3 is a rounding, not the answer (math-verify would accept it at 6 digits)."""
    if not _DECIMAL.match(predicted) or "." in reference or not isinstance(gold[0], sympy.Expr):
        return False
    try:
        return sympy.simplify(sympy.Rational(predicted.strip()) - gold[0]) != 0
    except (TypeError, ValueError, sympy.SympifyError):
        return False


def answers_match(predicted: str, reference: str, timeout_s: int = 5) -> bool:
    """True when `predicted` equals `reference` mathematically (math-verify on both, read as LaTeX
    or plain expressions), with three rules of ours first (docs/EVALS.md): a choice letter is
    compared as a letter, whatever text follows it; a decimal is not equal to an exact number it
    only rounds; a number followed by unit words is the number. When math-verify cannot read the
    reference, exact text (ignoring spaces)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math grading uses signal-based timeouts and must run in the main thread")
    choice = _CHOICE_REFERENCE.match(reference)
    if choice:
        reply = _CHOICE_REPLY.match(predicted)
        return bool(reply) and reply.group(1) == choice.group(1)
    words = _NUMBER_WITH_WORDS.match(predicted)
    predicted = words.group(1) if words else predicted
    gold = parse(f"${reference}$", extraction_config=_EXTRACTION, parsing_timeout=timeout_s)
    if not gold:
        return _normalise(predicted) == _normalise(reference)
    if _rounds_an_exact_number(predicted, reference, gold):
        return False
    pred = parse(f"${predicted}$", extraction_config=_EXTRACTION, parsing_timeout=timeout_s)
    return bool(pred) and verify(gold, pred, timeout_seconds=timeout_s)


def _parts(reference: str) -> int:
    """Number of top-level comma-separated parts of a reference ("3, 5" has 2; "\\{1,2\\}" has 1)."""
    depth, parts = 0, 1
    for char in reference:
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(char, 0)
        parts += char == "," and depth == 0
    return parts


def grade_math(problem: MathProblem, reply: str, timeout_s: int = 5) -> MathVerdict:
    """Grade one reply: its last \\boxed{} (else "the answer is ...", else the last sentence's
    statement) against the reference; a reference of k parts is also matched by the reply's last
    k boxes, joined (a several-part question answered box by box)."""
    extracted = extract_answer(reply)
    correct = extracted is not None and answers_match(extracted, problem.answer, timeout_s)
    boxes, parts = all_boxed(reply), _parts(problem.answer)
    if not correct and parts > 1 and len(boxes) >= parts:
        joined = ", ".join(box.strip() for box in boxes[-parts:])
        if answers_match(joined, problem.answer, timeout_s):
            correct, extracted = True, joined
    return MathVerdict(correct=correct, extracted=extracted, reference=problem.answer)
