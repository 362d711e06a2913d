"""Function-calling tool registry.

A tool is a function taking one pydantic model of arguments and returning text. The registry
emits OpenAI ``tools`` JSON schemas, validates the arguments a model sends (a bad argument comes
back as the tool's result, so the model can correct itself, never as an exception), and records
every call.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

MAX_RESULT_CHARS = 20_000


class ToolError(Exception):
    """An expected failure a tool reports to the model (bad path, missing text, ...)."""


@dataclass(frozen=True)
class Tool:
    """One tool: ``func(args)`` gets a validated ``args_model`` instance and returns text.

    ``dangerous`` tools (writing files, running commands) need approval in the coding agent.
    """

    name: str
    description: str
    args_model: type[BaseModel]
    func: Callable[[Any], str]
    dangerous: bool = False

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        parameters = self.args_model.model_json_schema()
        parameters.pop("title", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": parameters}}


@dataclass
class ToolCallRecord:
    """What happened when a tool was called."""

    name: str
    arguments: str
    result: str
    ok: bool
    duration_s: float
    error: str | None = None


@dataclass
class ToolRegistry:
    """Named tools plus a log of every call made through :meth:`call`."""

    tools: dict[str, Tool] = field(default_factory=dict)
    calls: list[ToolCallRecord] = field(default_factory=list)
    max_result_chars: int = MAX_RESULT_CHARS
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, *tools: Tool) -> ToolRegistry:
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name!r} is already registered")
            self.tools[tool.name] = tool
        return self

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI ``tools`` list for every registered tool."""
        return [tool.schema() for tool in self.tools.values()]

    def is_dangerous(self, name: str) -> bool:
        tool = self.tools.get(name)
        return tool is not None and tool.dangerous

    def call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolCallRecord:
        """Run tool ``name`` with the model's ``arguments`` (a JSON string or a dict).

        Never raises: unknown tools, malformed JSON, validation errors, ``ToolError``s and
        unexpected exceptions become an ``error: ...`` result with ``ok=False`` (and ``error`` set).
        """
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        start = time.monotonic()
        try:
            result, error = self._invoke(name, raw), None
        except ToolError as exc:
            result, error = f"error: {exc}", str(exc)
        except Exception as exc:  # a bug in a tool must not end the agent's run; it is logged
            error = f"internal error in tool {name}: {type(exc).__name__}: {exc}"
            result = f"error: {error}"
        record = ToolCallRecord(name=name, arguments=raw, result=self._clip(result), ok=error is None,
                                duration_s=time.monotonic() - start, error=error)
        with self._lock:
            self.calls.append(record)
        return record

    def _invoke(self, name: str, raw: str) -> str:
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool {name!r}; available tools: {', '.join(sorted(self.tools))}")
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(payload, dict):
            raise ToolError("arguments must be a JSON object")
        try:
            args = tool.args_model.model_validate(payload)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                                 for e in exc.errors())
            raise ToolError(f"invalid arguments for {name}: {problems}") from None
        try:
            return tool.func(args)
        except ToolError:
            raise
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from None

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_result_chars:
            return text
        dropped = len(text) - self.max_result_chars
        return f"{text[: self.max_result_chars]}\n... [{dropped} more characters truncated]"
