"""The token budget of one question: the served model's window and the part kept for the answer.

The window comes from, in order: the configured `context_window` (setting `QA_CONTEXT_WINDOW`),
the `max_model_len` the model's server reports in `GET /v1/models` (vLLM and our runtime do),
then `fallback_window` (the backend's own setting, such as vLLM's `--max-model-len`). The answer
keeps `answer_reserve` tokens of it (setting `QA_ANSWER_TOKENS`), by default an eighth of the
window between 256 and 4,096 tokens, and never more than half of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MIN_DEFAULT_ANSWER = 256
MAX_DEFAULT_ANSWER = 4_096


class ReportsWindow(Protocol):
    def max_model_len(self) -> int | None: ...


@dataclass(frozen=True)
class Window:
    """One question's budget; `source` says where `context_window` came from."""

    context_window: int
    answer_tokens: int
    source: str

    @property
    def prompt_tokens(self) -> int:
        """What the prompt may use so that prompt + answer fit the window."""
        return self.context_window - self.answer_tokens

    def as_dict(self) -> dict[str, int | str]:
        return {"context_window": self.context_window, "answer_tokens": self.answer_tokens, "source": self.source}


def default_answer_tokens(context_window: int) -> int:
    """An eighth of the window, at least 256 and at most 4,096 tokens (never over half the window)."""
    return min(context_window // 2, max(MIN_DEFAULT_ANSWER, min(MAX_DEFAULT_ANSWER, context_window // 8)))


def resolve_window(
    model: ReportsWindow, context_window: int | None, answer_reserve: int | None, fallback_window: int
) -> Window:
    """The window for the next question (asks the model's server unless `context_window` is set)."""
    if context_window is not None:
        window, source = context_window, "setting"
    elif (served := model.max_model_len()) is not None:
        window, source = served, "served model"
    else:
        window, source = fallback_window, "fallback"
    answer = default_answer_tokens(window) if answer_reserve is None else min(answer_reserve, window // 2)
    return Window(window, max(1, answer), source)
