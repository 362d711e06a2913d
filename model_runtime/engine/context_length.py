"""The one check that a prompt and its completion fit the model's context."""
from __future__ import annotations


class ContextLengthExceeded(ValueError):
    """A prompt, or a prompt plus the requested completion, longer than the context; `param` names
    the request field at fault (the prompt's field, or "max_tokens")."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def completion_budget(prompt_tokens: int, max_tokens: int | None, max_model_len: int, *,
                      prompt_param: str = "prompt") -> int:
    """The most tokens the completion may have: `max_tokens`, or all the room left when None.

    Raises ContextLengthExceeded when the prompt leaves no room (param `prompt_param`) or
    `max_tokens` is more than the room (param "max_tokens")."""
    if prompt_tokens >= max_model_len:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {max_model_len} tokens, but the prompt has "
            f"{prompt_tokens} tokens (at least one token must be left for the completion). "
            "Please shorten the prompt.", prompt_param)
    room = max_model_len - prompt_tokens
    if max_tokens is None:
        return room
    if max_tokens > room:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} for the "
            "completion). Please reduce the prompt or the completion length.", "max_tokens")
    return max_tokens
