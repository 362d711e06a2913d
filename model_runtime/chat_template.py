"""Render OpenAI-style conversations with the model's own Jinja chat template.

DeepSeek's templates ignore `tools=`, so the tool schemas are injected as one extra system
message (the template joins all system messages into the system prompt), in the call format of
the checkpoint's family (`call_style`, model_runtime/chat_formats.py). Messages are
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
TOOLS_PROMPT_FOOTER_V3 = (
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
# DeepSeek-V3.1's documented tool prompt (its model card), which V3.1 was trained to follow.
TOOLS_PROMPT_V3_1_HEADER = "## Tools\nYou have access to the following tools:\n"
TOOLS_PROMPT_V3_1_FOOTER = (
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"
    "{{additional_tool_calls}}<｜tool▁calls▁end｜>\n\n"
    "Where:\n\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces\n"
)
# Template variables the renderer sets itself; `template_kwargs` cannot replace them.
RESERVED_TEMPLATE_VARIABLES = frozenset({"messages", "add_generation_prompt", "bos_token", "eos_token", "tools"})

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


def _tool_schemas(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """{"name", "description" (when given), "parameters"} of each OpenAI-style tool."""
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
        raise ChatTemplateError("tools must be a list")
    schemas = []
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
            json.dumps(schema)
        except (TypeError, ValueError) as exc:
            raise ChatTemplateError(f"tools[{index}]: schema is not JSON-serialisable: {exc}") from exc
        schemas.append(schema)
    return schemas


def tools_system_prompt(tools: Sequence[Mapping[str, Any]], call_style: str = "v3") -> str:
    """The system-prompt block that lists OpenAI-style `tools` and the call format of `call_style`:
    "v3" (one JSON line per tool, V3's fenced calls) or "v3_1" (DeepSeek-V3.1's documented prompt)."""
    schemas = _tool_schemas(tools)
    if call_style == "v3_1":
        sections = [
            f"### {s['name']}\nDescription: {s.get('description', '')}\n\n"
            f"Parameters: {json.dumps(s['parameters'], ensure_ascii=False)}\n"
            for s in schemas
        ]
        return TOOLS_PROMPT_V3_1_HEADER + "\n" + "\n".join(sections) + "\n" + TOOLS_PROMPT_V3_1_FOOTER
    lines = [json.dumps(schema, ensure_ascii=False) for schema in schemas]
    return TOOLS_PROMPT_HEADER + "\n".join(lines) + TOOLS_PROMPT_FOOTER_V3


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    """A compiled chat template (sandboxed Jinja, as `transformers` renders chat templates)."""

    def __init__(self, source: str, bos_token: str, eos_token: str, call_style: str = "v3") -> None:
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = _raise_exception
        environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
        try:
            self._template = environment.from_string(fix_multi_round_tool_calls(source))
        except TemplateError as exc:
            raise ChatTemplateError(f"the chat template does not compile: {exc}") from exc
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.call_style = call_style

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        template_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """Prompt text for `messages`; `tools` become a trailing system message; `template_kwargs`
        are extra template variables (OpenAI-server `chat_template_kwargs`, e.g. V3.1's `thinking`)."""
        conversation = normalize_messages(messages)
        if tools:
            conversation.append({"role": "system", "content": tools_system_prompt(tools, self.call_style)})
        extra = dict(template_kwargs or {})
        reserved = sorted(RESERVED_TEMPLATE_VARIABLES & extra.keys())
        if reserved:
            raise ChatTemplateError(f"chat_template_kwargs cannot set {', '.join(reserved)}")
        try:
            return self._template.render(
                **extra,
                messages=conversation,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except (TemplateError, TypeError) as exc:
            raise ChatTemplateError(f"cannot render the conversation: {exc}") from exc
