"""Split DeepSeek thinking from the answer: `<think>REASONING</think>ANSWER`, whole or streamed.

As DeepSeek's API and vLLM's `deepseek_r1` reasoning parser give it (`reasoning_content` beside
`content`). The thinking is open from the first output token when the prompt ended in `<think>`
(R1's generation prompt, V3.1 with `thinking: true`): `prompt_opens_thinking(prompt_text)`.
Otherwise the output thinks only if it starts with `<think>` (after whitespace).

Rules, shared by `split_reasoning` (whole text) and `ReasoningStreamParser` (chunks):
- Not thinking: all text is content and the reasoning is None.
- Thinking: the text up to the first `</think>` is the reasoning, the rest is content; with no
  `</think>` (the output was cut while thinking) everything is reasoning and the content is "".
The stream parser holds back text that may be the start of a marker, so the concatenated deltas
equal the whole-text split however the output is chunked.
"""
from __future__ import annotations

THINK_BEGIN = "<think>"
THINK_END = "</think>"


def prompt_opens_thinking(prompt_text: str) -> bool:
    """True when the rendered prompt leaves the model inside a `<think>` block."""
    return prompt_text.rstrip().endswith(THINK_BEGIN)


def split_reasoning(text: str, in_thinking: bool) -> tuple[str | None, str]:
    """(reasoning or None, content) of a whole output."""
    if not in_thinking:
        stripped = text.lstrip()
        if not stripped.startswith(THINK_BEGIN):
            return None, text
        text = stripped[len(THINK_BEGIN):]
    reasoning, end, content = text.partition(THINK_END)
    return reasoning, content if end else ""


def _held_length(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for length in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-length:]):
            return length
    return 0


class ReasoningStreamParser:
    """Incremental twin of `split_reasoning`: `feed(delta)` and `finish()` return
    (reasoning delta, content delta); `thinking` tells whether any reasoning was found."""

    _START, _THINKING, _CONTENT = "start", "thinking", "content"

    def __init__(self, in_thinking: bool) -> None:
        self._state = self._THINKING if in_thinking else self._START
        self.thinking = in_thinking
        self._buffer = ""

    def feed(self, delta: str) -> tuple[str, str]:
        self._buffer += delta
        reasoning, content = "", ""
        if self._state == self._START:
            stripped = self._buffer.lstrip()
            if stripped.startswith(THINK_BEGIN):
                self._state, self.thinking = self._THINKING, True
                self._buffer = stripped[len(THINK_BEGIN):]
            elif not stripped or THINK_BEGIN.startswith(stripped):
                return "", ""  # whitespace or a `<think>` still arriving
            else:
                self._state = self._CONTENT
        if self._state == self._THINKING:
            before, end, after = self._buffer.partition(THINK_END)
            if end:
                reasoning, self._buffer, self._state = before, after, self._CONTENT
            else:
                keep = _held_length(before, THINK_END)
                reasoning, self._buffer = before[: len(before) - keep], before[len(before) - keep:]
                return reasoning, ""
        content, self._buffer = self._buffer, ""
        return reasoning, content

    def finish(self) -> tuple[str, str]:
        """End of output: held text is reasoning inside the thinking, content otherwise."""
        rest, self._buffer = self._buffer, ""
        return (rest, "") if self._state == self._THINKING else ("", rest)
