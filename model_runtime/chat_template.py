"""Render OpenAI-style conversations with the model's own Jinja chat template.

DeepSeek-V3's template ignores `tools=`, so the tool schemas are injected as one extra system
message (the template joins all system messages into the system prompt). Messages are
normalised first: text parts are joined, `tool_calls` arguments become JSON strings, empty
`tool_calls` are dropped. See docs/CHAT_FORMAT.md for the exact format and the reasons.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROLES = ("system", "user", "assistant", "tool")

TOOLS_PROMPT_HEADER = (
    "## Tools\n\n"
    "You can call the following tools. Each line describes one tool as a JSON object with its "
    "name, description and parameters (a JSON Schema):\n"
)
TOOLS_PROMPT_FOOTER = (
    "\n\nTo call tools, answer with this exact format, where NAME is the tool's name and the "
    "arguments are one JSON object that matches its parameters:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n"
    "```json\n"
    "{\"argument\": \"value\"}\n"
    "```<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n"
    "To make several calls, put one <｜tool▁call▁begin｜>...<｜tool▁call▁end｜> after another, "
    "separated by a newline, inside the same <｜tool▁calls▁begin｜>...<｜tool▁calls▁end｜>. "
    "The tool results come back in the next turn. When no tool is needed, answer directly."
)

# DeepSeek-V3's original template renders only the first tool-call round of a conversation
# correctly: `ns.is_first` and `ns.is_output_first` are never reset and tool outputs are not
# closed before a second round of calls. When the template contains these exact pieces, they
# are rewritten so every round renders like the first; an assistant turn that follows tool
# outputs starts right after `<｜tool▁outputs▁end｜>` with no `<｜Assistant｜>`, as the template
# already does for a final answer and for the generation prompt. Other templates (such as
# V3-0324's, which fixed this) are used verbatim.
MULTI_ROUND_FIX = (
    (
        "{% set ns = namespace(is_first=false,",
        "{% set ns = namespace(after_tool=false, is_first=false,",
    ),
    (
        "{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}",
        "{%- if message['role'] == 'assistant' and 'tool_calls' in message %}"
        "{%- set ns.after_tool = ns.is_tool -%}"
        "{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{%- endif %}"
        "{%- set ns.is_first = false -%}{%- set ns.is_output_first = true -%}{%- set ns.is_tool = false -%}",
    ),
    (
        "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type']",
        "{{('' if ns.after_tool else '<｜Assistant｜>') + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type']",
    ),
    (
        "{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'",
        "{{('' if ns.after_tool else '<｜Assistant｜>') + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'",
    ),
)


class ChatTemplateError(ValueError):
    """A conversation, a tool list or the template itself cannot be rendered."""


def fix_multi_round_tool_calls(source: str) -> str:
    """Apply MULTI_ROUND_FIX when every piece occurs exactly once; otherwise return `source`."""
    if not all(source.count(old) == 1 for old, _ in MULTI_ROUND_FIX):
        return source
    for old, new in MULTI_ROUND_FIX:
        source = source.replace(old, new)
    return source


def _text(content: Any, where: str) -> str:
    """Message content as one string: a string, or a list of OpenAI text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if not (isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ChatTemplateError(f"{where}: only text content parts are supported, got {part!r:.80}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ChatTemplateError(f"{where}: content must be a string or a list of text parts")


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    """One OpenAI tool call with its arguments as a JSON string, as the template requires."""
    function = call.get("function") if isinstance(call, Mapping) else None
    if not (isinstance(function, Mapping) and isinstance(function.get("name"), str) and function["name"]):
        raise ChatTemplateError(f"{where}: a tool call needs function.name")
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ChatTemplateError(f"{where}: arguments are not JSON-serialisable: {exc}") from exc
    return {"type": call.get("type") or "function", "function": {"name": function["name"], "arguments": arguments}}


def normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style messages reduced to what the template reads: role, content (str, or None for
    an assistant message that only calls tools) and tool_calls (only when non-empty)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ChatTemplateError("messages must be a non-empty list")
    normalized = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            raise ChatTemplateError(f"{where}: role must be one of {', '.join(ROLES)}")
        role = message["role"]
        content = message.get("content")
        tool_calls = message.get("tool_calls") if role == "assistant" else None
        if tool_calls is not None and (isinstance(tool_calls, (str, bytes)) or not isinstance(tool_calls, Sequence)):
            raise ChatTemplateError(f"{where}: tool_calls must be a list")
        if content is None and role != "assistant":
            raise ChatTemplateError(f"{where}: a {role} message needs content")
        entry: dict[str, Any] = {"role": role}
        if tool_calls:
            entry["content"] = None if content is None else _text(content, where)
            entry["tool_calls"] = [_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(tool_calls)]
        else:
            entry["content"] = "" if content is None else _text(content, where)
        normalized.append(entry)
    return normalized


def tools_system_prompt(tools: Sequence[Mapping[str, Any]]) -> str:
    """The system-prompt block that lists OpenAI-style `tools` and the call format."""
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
        raise ChatTemplateError("tools must be a list")
    lines = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not (
            isinstance(function, Mapping)
            and tool.get("type", "function") == "function"
            and isinstance(function.get("name"), str)
            and function["name"]
        ):
            raise ChatTemplateError(f"tools[{index}]: expected {{'type': 'function', 'function': {{'name': ...}}}}")
        schema = {"name": function["name"]}
        if function.get("description"):
            schema["description"] = function["description"]
        schema["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
        try:
            lines.append(json.dumps(schema, ensure_ascii=False))
        except (TypeError, ValueError) as exc:
            raise ChatTemplateError(f"tools[{index}]: schema is not JSON-serialisable: {exc}") from exc
    return TOOLS_PROMPT_HEADER + "\n".join(lines) + TOOLS_PROMPT_FOOTER


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    """A compiled chat template (sandboxed Jinja, as `transformers` renders chat templates)."""

    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise_exception
        environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
        try:
            self._template = environment.from_string(fix_multi_round_tool_calls(source))
        except TemplateError as exc:
            raise ChatTemplateError(f"the chat template does not compile: {exc}") from exc
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Prompt text for `messages`; `tools` become a trailing system message."""
        conversation = normalize_messages(messages)
        if tools:
            conversation.append({"role": "system", "content": tools_system_prompt(tools)})
        try:
            return self._template.render(
                messages=conversation,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except (TemplateError, TypeError) as exc:
            raise ChatTemplateError(f"cannot render the conversation: {exc}") from exc
