"""GrammarLogitsProcessor on the real DeepSeek vocabulary with random logits: every finished output
is valid, speculative-style prefix changes roll back correctly, bad schemas are clear errors."""
from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from model_runtime.server.constrained import GrammarBackend, GrammarError
from model_runtime.tokenizer import load_tokenizer
from model_runtime.tool_calls import parse_tool_calls

MODEL_VOCAB = 129280  # the model's embedding is padded beyond the tokenizer's 128,815 ids
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 99},
                                           "ok": {"type": "boolean"}, "kind": {"enum": ["a", "b"]}},
          "required": ["id", "ok", "kind"]}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def backend(tokenizer):
    return GrammarBackend(tokenizer)


def generate(processor, tokenizer, seed: int, max_tokens: int = 120) -> list[int]:
    """Greedy decoding over random logits, masked by `processor`."""
    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    for _ in range(max_tokens):
        logits = processor(out, torch.randn(MODEL_VOCAB, generator=generator))
        out.append(int(logits.argmax()))
        if out[-1] == tokenizer.eos_id:
            break
    return out


def test_schema_outputs_validate_and_end_with_eos(backend, tokenizer):
    compiled = backend.json_schema(SCHEMA)
    for seed in range(5):
        out = generate(backend.processor(compiled), tokenizer, seed)
        assert out[-1] == tokenizer.eos_id
        jsonschema.validate(json.loads(tokenizer.decode(out, skip_special_tokens=True)), SCHEMA)


def test_padded_ids_and_special_tokens_are_never_allowed(backend, tokenizer):
    processor = backend.processor(backend.json_object())
    logits = processor([], torch.zeros(MODEL_VOCAB))
    allowed = torch.isfinite(logits).nonzero().flatten().tolist()
    assert allowed and max(allowed) < tokenizer.vocab_size
    assert tokenizer.bos_id not in allowed and tokenizer.eos_id not in allowed
    assert all(tokenizer.decode([i]).lstrip().startswith("{") for i in allowed)


def test_after_the_grammar_only_eos_is_allowed(backend, tokenizer):
    processor = backend.processor(backend.json_schema({"type": "object", "properties": {}}))
    ids = tokenizer.encode("{}")
    logits = processor(ids, torch.zeros(MODEL_VOCAB))
    assert torch.isfinite(logits).nonzero().flatten().tolist() == [tokenizer.eos_id]


def test_rollback_to_a_shorter_prefix_matches_a_fresh_processor(backend, tokenizer):
    """Speculative decoding verifies drafts, then continues from fewer tokens: masks must follow."""
    compiled = backend.json_schema(SCHEMA)
    speculative = backend.processor(compiled)
    text_ids = tokenizer.encode('{"id": 42, "ok": true')
    speculative(text_ids, torch.zeros(MODEL_VOCAB))
    for cut in (len(text_ids) - 1, 3, 0, len(text_ids)):
        prefix = text_ids[:cut]
        expected = backend.processor(compiled)(prefix, torch.zeros(MODEL_VOCAB))
        assert torch.equal(torch.isfinite(speculative(prefix, torch.zeros(MODEL_VOCAB))), torch.isfinite(expected))


def test_a_rejected_draft_gets_an_eos_only_mask_and_the_valid_prefix_recovers(backend, tokenizer):
    processor = backend.processor(backend.json_schema(SCHEMA))
    bad = tokenizer.encode("{") + tokenizer.encode("x")
    assert torch.isfinite(processor(bad, torch.zeros(MODEL_VOCAB))).nonzero().flatten().tolist() == [tokenizer.eos_id]
    recovered = torch.isfinite(processor(bad[:1], torch.zeros(MODEL_VOCAB)))
    fresh = torch.isfinite(backend.processor(backend.json_schema(SCHEMA))(bad[:1], torch.zeros(MODEL_VOCAB)))
    assert torch.equal(recovered, fresh) and not recovered[tokenizer.eos_id]


def test_forced_tool_calls_parse_into_schema_valid_calls(backend, tokenizer):
    tools = [("lookup", {"type": "object", "properties": {"q": {"type": "string", "maxLength": 12}},
                         "required": ["q"]}),
             ("count", {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}},
                        "required": ["n"]})]
    schemas = dict(tools)
    for parallel, seed in ((False, 0), (True, 1), (True, 2)):
        out = generate(backend.processor(backend.tool_calls(tools, parallel)), tokenizer, seed, max_tokens=300)
        assert out[-1] == tokenizer.eos_id
        content, calls = parse_tool_calls(tokenizer.decode(out, skip_special_tokens=True), list(schemas))
        assert content == "" and calls and (parallel or len(calls) == 1)
        for call in calls:
            jsonschema.validate(json.loads(call.arguments), schemas[call.name])


@pytest.mark.parametrize("schema", [[1, 2], {"type": "object", "properties": {"a": {"$ref": "#/missing"}}}])
def test_unusable_schemas_raise_grammar_error(backend, schema):
    with pytest.raises(GrammarError):
        backend.json_schema(schema)
