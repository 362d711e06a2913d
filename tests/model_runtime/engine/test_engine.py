"""Engine behaviour: batching, chunked prefill, prefix caching, preemption, speculation, sampling."""
import pytest
import torch

from model_runtime import LLM, ModelConfig, SamplingParams
from model_runtime.engine.kv_cache import PagedLatentCache
from model_runtime.engine.model_runner import ModelRunner
from tests.model_runtime.engine.conftest import greedy_reference

PROMPTS = [[5, 6, 7], list(range(10, 27)), list(range(40, 47)), [9] * 30]
GREEDY = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)


def _run(llm, prompts=PROMPTS, params=GREEDY):
    return [o.outputs[0].token_ids for o in llm.generate(prompts, params)]


@pytest.fixture(scope="module")
def reference(tiny_checkpoint):
    _, model = tiny_checkpoint
    return [greedy_reference(model, p, 16) for p in PROMPTS]


@pytest.mark.parametrize("k", [0, 1, 2])
def test_batched_chunked_greedy_equals_recompute(tiny_checkpoint, reference, k):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=k, block_size=4, max_num_batched_tokens=8)
    assert _run(llm) == reference
    stats = llm.stats()
    assert stats["kv_blocks_used"] == 0
    if k:
        assert stats["spec_tokens_proposed"] > 0


def test_preemption_under_a_tiny_cache_keeps_outputs(tiny_checkpoint, reference):
    path, _ = tiny_checkpoint
    config = ModelConfig.from_pretrained(path)
    per_token = PagedLatentCache.bytes_per_token(config, config.num_hidden_layers + 1, torch.float32)
    # room for ~70 tokens: four sequences of up to 46 tokens cannot all stay resident
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=1, block_size=4,
              kv_cache_memory_bytes=per_token * 72, max_num_batched_tokens=16)
    assert _run(llm) == reference
    assert llm.stats()["kv_blocks_used"] == 0


class OracleRunner(ModelRunner):
    """Replaces MTP drafts by the true greedy continuation, except every third draft: exercises
    acceptance, partial acceptance and cache roll-back deterministically."""

    truth: dict[tuple, list[int]] = {}

    def _draft(self, seqs, results):
        super()._draft(seqs, results)
        for seq in seqs:
            done = len(seq.output_ids) + len(results[seq].tokens)  # this step's tokens are not appended yet
            future = self.truth[tuple(seq.prompt_ids)][done:]
            drafts = results[seq].drafts
            for j in range(len(drafts)):
                if j < len(future) and (done + j) % 3:
                    drafts[j] = future[j]


@pytest.mark.parametrize("k", [1, 3])
def test_accepted_drafts_keep_greedy_output_exact(tiny_checkpoint, reference, k):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=k, block_size=4, max_num_batched_tokens=64)
    OracleRunner.truth = {tuple(p): r for p, r in zip(PROMPTS, reference, strict=True)}
    llm.engine.runner.__class__ = OracleRunner
    assert _run(llm) == reference
    stats = llm.stats()
    assert 0 < stats["spec_tokens_accepted"] < stats["spec_tokens_proposed"]


def test_prefix_cache_reuses_blocks_and_gives_same_output(tiny_checkpoint):
    path, model = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=1, block_size=4)
    prompt = list(range(30, 60))
    first = _run(llm, [prompt])
    bm = llm.engine.block_manager
    cached, _ = bm.match_prefix(prompt + first[0])
    assert len(cached) >= len(prompt) // 4  # the prompt's blocks are published
    second = _run(llm, [prompt])
    assert first == second == [greedy_reference(model, prompt, 16)]


def test_stop_strings_stop_ids_max_tokens_and_logprobs(tiny_checkpoint, reference):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True)
    full = reference[1]
    out = llm.generate([PROMPTS[1]], SamplingParams(temperature=0, max_tokens=16, stop_token_ids=[full[5]], ignore_eos=True))[0].outputs[0]
    assert out.token_ids == full[: full.index(full[5]) + 1] and out.finish_reason == "stop"
    out = llm.generate([PROMPTS[1]], SamplingParams(temperature=0, max_tokens=4, ignore_eos=True, logprobs=3))[0].outputs[0]
    assert out.token_ids == full[:4] and out.finish_reason == "length"
    assert len(out.logprobs) == 4 and all(lp.token_id == t for lp, t in zip(out.logprobs, full[:4], strict=True))
    assert all(max(lp.top.values()) == pytest.approx(lp.logprob) for lp in out.logprobs)  # greedy = top-1
    text = llm.tokenizer.decode(full, skip_special_tokens=True)
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    if stop.strip():
        out = llm.generate([PROMPTS[1]], SamplingParams(temperature=0, max_tokens=16, stop=[stop], ignore_eos=True))[0].outputs[0]
        assert stop not in out.text and text.startswith(out.text) and out.finish_reason == "stop"


def test_seeded_sampling_is_reproducible_and_seeds_differ(tiny_checkpoint):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=1)
    params = lambda seed: SamplingParams(temperature=1.0, top_p=0.9, top_k=50, max_tokens=24, seed=seed, ignore_eos=True)
    a, b, c = (_run(llm, [PROMPTS[0]], params(s))[0] for s in (7, 7, 8))
    assert a == b and a != c


def test_bad_requests_are_value_errors(tiny_checkpoint):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, max_model_len=32)
    with pytest.raises(ValueError, match="maximum context length is 32"):
        llm.generate([list(range(40))], GREEDY)
    with pytest.raises(ValueError, match="maximum context length is 32"):  # 20 + 13 > 32, as the server's 400
        llm.generate([list(range(5, 25))], SamplingParams(temperature=0, max_tokens=13))
    rest = llm.generate([list(range(5, 25))], SamplingParams(temperature=0, max_tokens=None, ignore_eos=True))
    assert len(rest[0].outputs[0].token_ids) == 12 and rest[0].outputs[0].finish_reason == "length"
    with pytest.raises(ValueError, match="empty"):
        llm.generate([[]], GREEDY)
    with pytest.raises(ValueError, match="token ids must be in"):
        llm.generate([[999999]], GREEDY)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)


def test_abort_frees_blocks_at_once(tiny_checkpoint):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, block_size=4)
    engine = llm.engine
    engine.add_request("a", list(range(5, 25)), SamplingParams(temperature=0, max_tokens=100, ignore_eos=True))
    engine.step()
    engine.step()
    assert engine.block_manager.num_used > 0
    engine.abort_request("a")
    assert engine.block_manager.num_used == 0 and not engine.has_unfinished_requests()


def test_deepseek_v3_latent_cache_is_70272_bytes_per_token():
    assert PagedLatentCache.bytes_per_token(ModelConfig(), 61, torch.bfloat16) == 70_272


def test_logit_bias_min_tokens_and_penalties_through_the_engine(tiny_checkpoint, reference):
    """Speculation on: requests with request processors decode without drafts and honour them."""
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, speculative_tokens=1, block_size=4)
    prompt = PROMPTS[1]
    forced = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=6, ignore_eos=True,
                                                   logit_bias={77: 100.0}))[0].outputs[0].token_ids
    assert forced == [77] * 6
    first = reference[1][0]  # greedy's first token, made a stop token: the output ends at once
    stopped = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=8, stop_token_ids=[first]))
    assert stopped[0].outputs[0].token_ids == [first]
    at_least = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=8, stop_token_ids=[first],
                                                     min_tokens=4, ignore_eos=True))[0].outputs[0].token_ids
    assert len(at_least) >= 4 and first not in at_least[:3]
    repeated = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=16, ignore_eos=True,
                                                     frequency_penalty=2.0, presence_penalty=2.0))
    ids = repeated[0].outputs[0].token_ids
    assert len(set(ids)) > len(set(reference[1]))  # greedy repeats one token here; penalised, it cannot
    assert llm.stats()["kv_blocks_used"] == 0


def test_the_device_reaches_weights_cache_and_steps(tiny_checkpoint, reference):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", enforce_eager=True, device="cpu", block_size=4)
    assert llm.engine.cache.storage.device == torch.device("cpu")
    assert {p.device for p in llm.engine.model.parameters()} == {torch.device("cpu")}
    assert _run(llm) == reference
    with pytest.raises(ValueError, match="not a torch device"):
        LLM(str(path), dtype="float32", enforce_eager=True, device="no-such-device")


def test_a_hash_collision_is_not_a_prefix_cache_hit(monkeypatch):
    from model_runtime.engine import block_manager

    monkeypatch.setattr(block_manager, "block_hash", lambda parent, tokens, next_token: 42)  # every block collides
    bm = block_manager.BlockManager(num_blocks=8, block_size=4)
    table, hashes = [], []
    first = list(range(10, 19))
    assert bm.grow(table, len(first))
    bm.register(table, hashes, first, len(first))
    assert bm.match_prefix(first)[0] == table[:1]  # the same tokens: a hit
    assert bm.match_prefix(list(range(50, 59)))[0] == []  # same hash, other tokens: a miss
    assert bm.match_prefix(first[:4] + [99] + first[5:])[0] == []  # other next token: a miss


def test_the_runner_returns_tokens_and_the_scheduler_appends_them(tiny_checkpoint, reference):
    from model_runtime.engine.outputs import StepResult

    path, _ = tiny_checkpoint
    engine = LLM(str(path), dtype="float32", enforce_eager=True, block_size=4).engine
    engine.add_request("a", PROMPTS[1], SamplingParams(temperature=0, max_tokens=8, stop_token_ids=[99]))
    results = engine.runner.run(engine.scheduler.schedule())
    (seq, result), = results.items()
    assert result.tokens == reference[1][:1] and seq.output_ids == []  # computed, not appended
    engine.scheduler.postprocess(results)
    assert seq.output_ids == reference[1][:1]
    # tokens after a stop token (accepted drafts past it) are dropped and the blocks freed
    engine.scheduler.postprocess({seq: StepResult([7, 99, 8], [None] * 3)})
    assert seq.output_ids == reference[1][:1] + [7, 99] and seq.finish_reason == "stop"
    assert engine.block_manager.num_used == 0
