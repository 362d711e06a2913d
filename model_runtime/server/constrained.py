"""Constrained decoding with xgrammar: JSON (any object or a JSON Schema) and forced tool calls.

`GrammarBackend` holds one tokenizer's vocabulary as xgrammar sees it and a compiler with a
cache, so a schema is compiled once however often it is requested. `processor(grammar)` returns
a fresh `GrammarLogitsProcessor` per request: before each sampled token it masks every token
that would not keep the output a valid prefix of the grammar, and once the grammar is complete
only EOS remains allowed.

Choices (see docs/SERVER.md):
- JSON is single-line: `any_whitespace=False`, separators `", "` and `": "`. A model cannot pad
  the output with endless whitespace, which a free grammar would allow.
- `json_object` is any JSON object (additional properties allowed); `json_schema` uses
  xgrammar's strict mode: properties not in the schema are not generated (the output still
  validates against the schema).
- Forced tool calls (`tool_choice` "required" or a named function) use the checkpoint's tool-call
  format (V3's fenced calls separated by a newline, or V3.1's `NAME<｜tool▁sep｜>{...}` chained) as
  an xgrammar structural tag: the whole section from `<｜tool▁calls▁begin｜>` to
  `<｜tool▁calls▁end｜>`, each call's arguments held to the tool's parameter schema, with at most
  one whitespace character between JSON elements. (xgrammar's `excludes`, which could keep
  tool-call markers out of argument strings, would drop `maxLength`, so it is not used.)
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
import xgrammar as xgr
from xgrammar.structural_tag import JSONSchemaFormat, StructuralTag, TagFormat, TagsWithSeparatorFormat

from model_runtime.tokenizer import DeepSeekTokenizer
from model_runtime.tool_calls import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, TOOL_SEP

JSON_SEPARATORS = (", ", ": ")
ANY_OBJECT_SCHEMA = {"type": "object"}
EMPTY_PARAMETERS = {"type": "object", "properties": {}}


class GrammarError(ValueError):
    """A schema or tool list that cannot be turned into a grammar; the message says why."""


def encoded_vocab(tokenizer: DeepSeekTokenizer) -> list[str]:
    """Token strings in byte-level form, as xgrammar's BYTE_LEVEL vocab type expects.

    Special added tokens (BOS, EOS, pad, placeholders) become "" so xgrammar never allows them
    as text (the detokenizer drops them); EOS is allowed only as the stop token. Chat and
    tool-call markers are ordinary text in this vocabulary and keep their text.
    """
    hf = tokenizer.tokenizer
    vocab = [hf.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
    for token_id, added in hf.get_added_tokens_decoder().items():
        if added.special and token_id < len(vocab):
            vocab[token_id] = ""
    return vocab


class GrammarLogitsProcessor:
    """Masks logits to the tokens the grammar allows next; one instance per request.

    Called as `(generated token ids, logits [V] float32) -> logits`. The ids may come in any
    order of prefixes (speculative decoding verifies hypothetical drafts, then continues from a
    shorter list): the matcher rolls back to the longest common prefix and accepts the rest.
    A prefix that leaves the grammar (an unverified draft) gets an EOS-only mask: it can only
    be sampled if the engine committed a token the grammar rejected, and then ending is the
    safe choice.
    """

    def __init__(self, compiled: xgr.CompiledGrammar, vocab_size: int, eos_id: int) -> None:
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self._vocab_size = vocab_size
        self._eos_id = eos_id
        self._accepted: list[int] = []

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        if not self._sync(generated) or self._matcher.is_terminated():
            eos_logit = logits[self._eos_id].clone()
            logits.fill_(float("-inf"))
            logits[self._eos_id] = eos_logit
            return logits
        self._matcher.fill_next_token_bitmask(self._bitmask)
        head = logits[: self._vocab_size]  # the model's vocab may be padded beyond the tokenizer's
        xgr.apply_token_bitmask_inplace(head, self._bitmask, vocab_size=self._vocab_size)
        logits[self._vocab_size :] = float("-inf")
        return logits

    def _sync(self, generated: list[int]) -> bool:
        """Bring the matcher to the state after `generated`; False when the grammar rejects it."""
        common = 0
        for mine, theirs in zip(self._accepted, generated, strict=False):
            if mine != theirs:
                break
            common += 1
        if common < len(self._accepted):
            self._matcher.rollback(len(self._accepted) - common)
            del self._accepted[common:]
        for token_id in generated[common:]:
            if not self._matcher.accept_token(token_id):
                return False
            self._accepted.append(token_id)
        return True


def _check_schema(schema: Any, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise GrammarError(f"{where} must be a JSON Schema object")
    try:
        json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise GrammarError(f"{where} is not JSON-serialisable: {exc}") from exc
    return schema


class GrammarBackend:
    """Grammar compilation for one tokenizer (xgrammar's compiler caches compiled grammars)."""

    def __init__(self, tokenizer: DeepSeekTokenizer, max_threads: int = 2) -> None:
        vocab = encoded_vocab(tokenizer)
        self.vocab_size = len(vocab)
        self.eos_id = tokenizer.eos_id
        info = xgr.TokenizerInfo(vocab, xgr.VocabType.BYTE_LEVEL, vocab_size=self.vocab_size,
                                 stop_token_ids=[self.eos_id], add_prefix_space=False)
        self._compiler = xgr.GrammarCompiler(info, max_threads=max_threads, cache_enabled=True)

    def processor(self, compiled: xgr.CompiledGrammar) -> GrammarLogitsProcessor:
        return GrammarLogitsProcessor(compiled, self.vocab_size, self.eos_id)

    def json_object(self) -> xgr.CompiledGrammar:
        """Any JSON object."""
        return self._compile_schema(ANY_OBJECT_SCHEMA, strict=False, where="response_format")

    def json_schema(self, schema: Any) -> xgr.CompiledGrammar:
        """JSON that validates against `schema` (the subset xgrammar supports; docs/SERVER.md)."""
        return self._compile_schema(_check_schema(schema, "response_format.json_schema.schema"), strict=True,
                                    where="response_format.json_schema.schema")

    def tool_calls(self, tools: Sequence[tuple[str, dict[str, Any] | None]], parallel: bool,
                   call_style: str = "v3") -> xgr.CompiledGrammar:
        """A DeepSeek tool-call section with at least one call of one of `tools` (name, parameters),
        in `call_style` "v3" or "v3_1". With `parallel`, several calls may follow one another
        (V3: separated by a newline; V3.1: chained directly)."""
        if not tools:
            raise GrammarError("tool_choice needs at least one tool")
        tags = []
        for name, parameters in tools:
            schema = _check_schema(parameters, f"the parameters of tool {name!r}") if parameters else EMPTY_PARAMETERS
            v3 = call_style == "v3"
            tags.append(TagFormat(
                begin=f"{CALL_BEGIN}function{TOOL_SEP}{name}\n```json\n" if v3 else f"{CALL_BEGIN}{name}{TOOL_SEP}",
                content=JSONSchemaFormat(json_schema=schema, max_whitespace_cnt=1),
                end=f"\n```{CALL_END}" if v3 else CALL_END,
            ))
        separator = "\n" if call_style == "v3" else ""
        section = TagFormat(
            begin=CALLS_BEGIN,
            content=TagsWithSeparatorFormat(tags=tags, separator=separator, at_least_one=True,
                                            stop_after_first=not parallel),
            end=CALLS_END,
        )
        try:
            return self._compiler.compile_structural_tag(StructuralTag(format=section))
        except RuntimeError as exc:
            raise GrammarError(f"cannot build a grammar for the tools' parameters: {exc}") from exc

    def _compile_schema(self, schema: dict[str, Any], strict: bool, where: str) -> xgr.CompiledGrammar:
        try:
            return self._compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                      separators=JSON_SEPARATORS, strict_mode=strict)
        except RuntimeError as exc:
            raise GrammarError(f"{where} is not a supported JSON Schema: {exc}") from exc
