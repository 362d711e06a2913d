"""Turning model text into something gradable: a program for the code benchmarks, an answer for MATH."""
from __future__ import annotations

import re

from evals.datasets import CodeProblem

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|$)", re.S)
_CODE_LANGS = {"", "python", "py", "python3"}
_ANSWER_IS = re.compile(r"answer is[:\s]*\$*(.+?)\$*\s*(?:\.\s|\.?$|\n)", re.I | re.S)
# The last sentence states the answer: "... the smallest is 2220." / "... so x = 5."
_STATED = re.compile(r"(?:\bis|=|\bequals|\bbe)\s*\$*\s*([^\s$]+?)\s*\$*\s*\.?\s*$", re.I)


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


def _boxed_spans(text: str) -> list[str]:
    r"""Contents of every \boxed{...} / \fbox{...} (and brace-less `\boxed 5`), in order; a box
    whose braces never close ends the list."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)", text):
        i = match.end()
        if i < len(text) and text[i] == " ":
            plain = re.match(r" +([^\s$]+)", text[i:])
            if plain:
                found.append(plain.group(1))
            continue
        if i >= len(text) or text[i] != "{":
            continue
        depth = 0
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                found.append(text[i + 1 : j])
                break
        else:
            return found + [None]
    return found


def all_boxed(text: str) -> list[str]:
    r"""Every complete \boxed{} content of a reply, in order."""
    return [box for box in _boxed_spans(text) if box is not None]


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}), nested braces included; also the
    brace-less form `\boxed 5`. None when there is none or its braces never close."""
    spans = _boxed_spans(text)
    return spans[-1] if spans else None


def _last_sentence(text: str) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if s.strip()]
    return sentences[-1] if sentences else ""


def extract_answer(text: str) -> str | None:
    r"""The final answer of a MATH solution: the last \boxed{} content, else what follows the last
    "the answer is", else what the last sentence states ("... the smallest is 2220."), else None."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    matches = _ANSWER_IS.findall(text)
    if matches:
        return matches[-1].strip()
    stated = _STATED.search(_last_sentence(text))
    return stated.group(1).rstrip(".,;") if stated else None
