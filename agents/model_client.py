"""OpenAI-API chat client for agents: our runtime, vLLM or a hosted API.

Streams every reply (tokens go to ``on_token`` as they arrive) and assembles the assistant
message, tool calls included, as a plain OpenAI message dict. The connection, its retries and
errors, and the rule "the answer, not the thinking" come from the shared client module
(tools/openai_client.py): streamed `reasoning_content` is never read, and the final content
loses a leading `<think>...</think>`.
``on_token`` may raise to end the reply early (a Stop button, a cancelled run): the HTTP stream
is closed, so the server stops generating, and the exception propagates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai

from tools.openai_client import ModelEndpoint, ModelError, answer_text, model_error

__all__ = ["ChatModel", "ModelConfig", "ModelError"]


@dataclass(frozen=True)
class ModelConfig(ModelEndpoint):
    """The endpoint plus how the agents sample."""

    temperature: float = 0.0
    max_tokens: int | None = 2048


class ChatModel:
    """Thin streaming wrapper around ``openai.OpenAI`` chat completions."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._client = config.client()

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             on_token: Callable[[str], None] | None = None, max_tokens: int | None = None) -> dict[str, Any]:
        """One assistant turn: ``{"role": "assistant", "content": str | None, "tool_calls": [...]}``.

        ``max_tokens`` overrides the configured answer length for this turn.
        """
        request: dict[str, Any] = {"model": self.config.model, "messages": messages, "stream": True,
                                   "temperature": self.config.temperature}
        if max_tokens or self.config.max_tokens:
            request["max_tokens"] = max_tokens or self.config.max_tokens
        if tools:
            request["tools"] = tools
        try:
            with self._client.chat.completions.create(**request) as stream:
                return _assemble(stream, on_token)
        except openai.OpenAIError as exc:
            raise model_error(exc, self.config) from exc

    def max_model_len(self) -> int | None:
        """The served model's context window as its server reports it in ``GET /models``
        (``max_model_len``: vLLM and our runtime do), or None when it says nothing or cannot be asked."""
        try:
            models = self._client.with_options(max_retries=0, timeout=10.0).models.list()
        except openai.OpenAIError:
            return None
        for card in models.data:
            value = (card.model_extra or {}).get("max_model_len")
            if card.id == self.config.model and isinstance(value, int) and value > 0:
                return value
        return None


def _assemble(stream: Any, on_token: Callable[[str], None] | None) -> dict[str, Any]:
    """Merge streamed deltas into one assistant message."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.content:
            content.append(delta.content)
            if on_token:
                on_token(delta.content)
        for part in delta.tool_calls or []:
            call = calls.setdefault(part.index, {"id": None, "type": "function",
                                                 "function": {"name": "", "arguments": ""}})
            call["id"] = part.id or call["id"]
            if part.function:
                call["function"]["name"] += part.function.name or ""
                call["function"]["arguments"] += part.function.arguments or ""
    message: dict[str, Any] = {"role": "assistant", "content": answer_text("".join(content)) or None}
    if calls:
        message["tool_calls"] = [{**call, "id": call["id"] or f"call_{index}"}
                                 for index, call in sorted(calls.items())]
    return message
