"""One chat choice's output as OpenAI message fields: reasoning, content and tool calls.

The model's text goes through the reasoning split first (when the server's reasoning parser is
on: `<think>...</think>` becomes `reasoning_content`), then the answer through the tool-call parser
(when the request has tools). `message` does it on the whole text, `ChoiceStream` on deltas; for
the same text both give the same fields, however the text was chunked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_runtime.reasoning import ReasoningStreamParser, split_reasoning
from model_runtime.tool_calls import ContentDelta, ToolCallStreamParser, parse_tool_calls


@dataclass(frozen=True)
class OutputPlan:
    """What to parse out of a choice: reasoning (and whether the prompt opened it), tool calls."""

    reasoning: bool
    in_thinking: bool
    tool_names: list[str] | None  # None: no tool parsing

    def message(self, text: str) -> tuple[dict[str, Any], bool]:
        """(assistant message dict, whether it has tool calls) of a whole output."""
        reasoning, content = split_reasoning(text, self.in_thinking) if self.reasoning else (None, text)
        calls = []
        if self.tool_names is not None:
            content, calls = parse_tool_calls(content, self.tool_names)
        message: dict[str, Any] = {"role": "assistant", "content": content if content or not calls else None}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = [call.to_openai() for call in calls]
        return message, bool(calls)


class ChoiceStream:
    """Deltas of one streamed choice: `delta(text, finished)` -> the OpenAI delta fields to send."""

    def __init__(self, plan: OutputPlan) -> None:
        self._reasoning = ReasoningStreamParser(plan.in_thinking) if plan.reasoning else None
        self._tools = ToolCallStreamParser(plan.tool_names) if plan.tool_names is not None else None
        self.has_calls = False

    def delta(self, text: str, finished: bool) -> dict[str, Any]:
        reasoning, content = "", text
        if self._reasoning is not None:
            reasoning, content = self._reasoning.feed(text)
            if finished:
                more_reasoning, more_content = self._reasoning.finish()
                reasoning, content = reasoning + more_reasoning, content + more_content
        calls: list[dict[str, Any]] = []
        if self._tools is not None:
            events = self._tools.feed(content) + (self._tools.finish() if finished else [])
            content = "".join(e.text for e in events if isinstance(e, ContentDelta))
            calls = [{"index": e.index, **e.call.to_openai()} for e in events if not isinstance(e, ContentDelta)]
            self.has_calls = self.has_calls or bool(calls)
        delta: dict[str, Any] = {}
        if reasoning:
            delta["reasoning_content"] = reasoning
        if content:
            delta["content"] = content
        if calls:
            delta["tool_calls"] = calls
        return delta
