"""Turning model text into something gradable: a program for the code benchmarks, an answer for MATH."""
from __future__ import annotations

import re

from evals.datasets import CodeProblem

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|$)", re.S)
_CODE_LANGS = {"", "python", "py", "python3"}
_ANSWER_IS = re.compile(r"answer is[:\s]*\$*(.+?)\$*\s*(?:\.\s|\.?$|\n)", re.I | re.S)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order; an unterminated last fence counts."""
    return [(lang.lower(), body) for lang, body in _FENCE.findall(text)]


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def extract_code(text: str, entry_point: str) -> str:
    """Code from a chat reply: the Python fenced block that defines `entry_point` (else the longest
    Python block); the whole reply when it has no fenced block (a bare completion)."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in _CODE_LANGS]
    if not blocks:
        return text
    defining = [b for b in blocks if _defines(b, entry_point)]
    return defining[0] if defining else max(blocks, key=len)


def truncate_body(completion: str) -> str:
    """A base model's continuation of a function, cut where the function ends: at the first
    non-blank line that starts in column 0 (a new top-level statement)."""
    lines = completion.split("\n")
    for i, line in enumerate(lines):
        if i > 0 and line.strip() and not line[0].isspace():
            return "\n".join(lines[:i]) + "\n"
    return completion


def _indent_body(code: str) -> str:
    """Indent a function body that came back flush-left, so it continues the prompt's def."""
    first = next((line for line in code.split("\n") if line.strip()), "")
    if first[:1].isspace():
        return code
    return "\n".join(("    " + line) if line.strip() else line for line in code.split("\n"))


def build_program(problem: CodeProblem, completion: str, mode: str) -> str:
    """The program to test. The prompt always comes first, so its imports and helper functions
    (e.g. HumanEval/32's `poly`) exist; a reply that defines the entry point itself follows it and
    replaces the prompt's stub; a reply that is only a body continues the prompt's signature."""
    if mode == "completion":
        return problem.prompt + truncate_body(completion)
    code = extract_code(completion, problem.entry_point)
    if _defines(code, problem.entry_point):
        return problem.prompt + "\n\n" + code.strip("\n") + "\n"
    return problem.prompt + _indent_body(code.strip("\n")).rstrip() + "\n"


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}), nested braces included; also the
    brace-less form `\boxed 5`. None when there is none or its braces never close."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (len("\\boxed") if text.startswith("\\boxed", start) else len("\\fbox"))
    if i < len(text) and text[i] == " ":
        match = re.match(r" +([^\s$]+)", text[i:])
        return match.group(1) if match else None
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def extract_answer(text: str) -> str | None:
    r"""The final answer of a MATH solution: the last \boxed{} content, else what follows the last
    "the answer is", else None."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    matches = _ANSWER_IS.findall(text)
    return matches[-1].strip() if matches else None
