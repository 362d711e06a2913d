"""Prompts: chat messages for instruct models, raw text for base models (completion mode)."""
from __future__ import annotations

from dataclasses import dataclass, field

from evals.datasets import CodeProblem, MathProblem

CODE_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including its "
    "signature and any imports it needs, in one ```python code block.\n\n```python\n{prompt}```"
)
MATH_INSTRUCTION = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
MATH_COMPLETION = "Problem:\n{problem}\n\nSolution: Let's think step by step, and put the final answer in \\boxed{{}}.\n"

# Base models continue a function body; these end it. The OpenAI API accepts at most four.
CODE_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint("]
MATH_STOP = ["\n\nProblem:"]


@dataclass(frozen=True)
class Request:
    """One generation request: `messages` for chat mode, `prompt` (+ `stop`) for completion mode."""

    messages: list[dict] | None = None
    prompt: str | None = None
    stop: list[str] = field(default_factory=list)


def build_request(problem: CodeProblem | MathProblem, mode: str) -> Request:
    """The request for `problem` in `mode` ("chat" or "completion")."""
    if mode not in ("chat", "completion"):
        raise ValueError(f"mode must be 'chat' or 'completion', not {mode!r}")
    if isinstance(problem, MathProblem):
        if mode == "chat":
            return Request(messages=[{"role": "user", "content": MATH_INSTRUCTION.format(problem=problem.problem)}])
        return Request(prompt=MATH_COMPLETION.format(problem=problem.problem), stop=list(MATH_STOP))
    if mode == "chat":
        return Request(messages=[{"role": "user", "content": CODE_INSTRUCTION.format(prompt=problem.prompt)}])
    return Request(prompt=problem.prompt, stop=list(CODE_STOP))
