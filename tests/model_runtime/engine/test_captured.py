"""The captured (compiled, fixed-shape) decode step gives the eager path's greedy output, and its
sampling step the eager sampler's tokens for the same seeds.

Compiling is slow, so this file compiles seven shapes in all (some for several engines): batch bucket
2 with one token per row, greedy and two sampling steps; batch bucket 1 with one (in subprocesses sharing an
on-disk cache); with MTP (k = 1) batch bucket 1 with two tokens per row (verification and the MTP
catch-up in one step); with k = 2 that step over three tokens and the MTP module over one (the
second draft). All run the tiny test model.
"""
import json
import os
import subprocess
import sys
import threading

import pytest
import torch
from torch._dynamo.utils import counters

from model_runtime import LLM, DeepseekV3ForCausalLM, SamplingParams
from model_runtime.engine.captured import MAIN, SAMPLE, SAMPLE_TEMPERATURE, VERIFY
from model_runtime.engine.kv_cache import KernelBatchView
from model_runtime.loader.save import save_checkpoint
from tests.model_runtime.checkpoints import randomize_
from tests.model_runtime.engine.conftest import greedy_reference

PROMPTS = [[5, 6, 7, 8, 9], list(range(10, 21))]
GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """Inductor's on-disk cache for this file's engines (what `serve --compile-cache-dir` sets)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("inductor")))
        yield


@pytest.fixture(scope="module")
def reference(tiny_checkpoint):
    _, model = tiny_checkpoint
    return [greedy_reference(model, p, 12) for p in PROMPTS]


def _outputs(llm, prompts, params=GREEDY):
    return [o.outputs[0].token_ids for o in llm.generate(prompts, params)]


def test_captured_greedy_equals_eager_and_recompute(tiny_checkpoint, reference, compile_cache):
    path, _ = tiny_checkpoint
    eager = LLM(str(path), dtype="float32", enforce_eager=True, max_num_seqs=2)
    captured = LLM(str(path), dtype="float32", max_num_seqs=2)
    assert _outputs(eager, PROMPTS) == _outputs(captured, PROMPTS) == reference
    steps = captured.engine.runner.captured
    assert list(steps.steps) == [(MAIN, 2, 4, 1)]  # both requests decode together: one shape compiled and used
    assert steps.compile_seconds[(MAIN, 2, 4, 1)] > 0
    assert steps.view_type is KernelBatchView  # float32 on CPU: attention read the paged cache in place
    # frozen: the weights became constants of the step, so Inductor packed its linears (a cold cache here)
    assert counters["inductor"]["mkldnn_linear_weight_pack_matcher_count"] > 0
    # a greedy and a sampled request decode together in one compiled step that samples each row with
    # its own parameters and seed: the eager path's tokens (the same uniforms from the same generators)
    # (top-k/top-p filtered in the step, or temperature alone: a step without the sort)
    for kind, filters in ((SAMPLE, {"top_k": 40, "top_p": 0.95}), (SAMPLE_TEMPERATURE, {})):
        sampled = SamplingParams(temperature=0.9, max_tokens=12, seed=3, ignore_eos=True, **filters)
        mixed = _mixed(captured, [GREEDY, sampled])
        assert mixed == _mixed(eager, [GREEDY, sampled]) and mixed[0] == reference[0]
        assert (kind, 2, 4, 1) in steps.steps
        other_seed = SamplingParams(temperature=0.9, max_tokens=12, seed=4, ignore_eos=True, **filters)
        assert mixed[1] != _mixed(eager, [GREEDY, other_seed])[1]  # the seed matters
    # a request with logprobs still decodes eagerly beside it, and the cache stays consistent for all
    with_logprobs = SamplingParams(temperature=1.0, max_tokens=12, seed=3, ignore_eos=True, logprobs=1)
    assert _outputs(captured, PROMPTS[:1], with_logprobs) == _outputs(eager, PROMPTS[:1], with_logprobs)
    assert captured.stats()["kv_blocks_used"] == 0


def _mixed(llm, params: list[SamplingParams]) -> list[list[int]]:
    """PROMPTS[i] with params[i], in one batch: each request's token ids."""
    engine = llm.engine
    for i, (prompt, p) in enumerate(zip(PROMPTS, params, strict=True)):
        engine.add_request(str(i), prompt, p)
    tokens: dict[str, list[int]] = {str(i): [] for i in range(len(PROMPTS))}
    while engine.has_unfinished_requests():
        for out in engine.step():
            tokens[out.request_id] += out.new_token_ids
    return [tokens[str(i)] for i in range(len(PROMPTS))]


def test_a_background_compile_serves_eagerly_until_the_step_is_ready(tiny_checkpoint, reference, compile_cache):
    """As `serve` runs it: the first requests of a new shape do not wait for its compile."""
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", max_num_seqs=2, compile_in_background=True)
    steps = llm.engine.runner.captured
    release = threading.Event()
    compile_all = steps._compile_all
    steps._compile_all = lambda shapes: release.wait() and compile_all(shapes)  # held until we let it go
    calls = []
    run = steps._run
    steps._run = lambda *args, **kwargs: calls.append(args[1]) or run(*args, **kwargs)
    assert _outputs(llm, PROMPTS) == reference  # all eager: the compile has not run yet
    assert calls == [] and steps._compiler.is_alive()
    release.set()
    steps._compiler.join()
    assert list(steps.steps) == [(MAIN, 2, 4, 1)]
    calls.clear()
    assert _outputs(llm, PROMPTS) == reference
    assert calls and set(calls) == {(MAIN, 2, 4, 1)}  # now through the compiled step


def test_engines_with_the_same_shapes_keep_their_own_frozen_weights(tiny_checkpoint, reference, compile_cache):
    """Every engine's steps are compiled from one code object and run with most guards skipped; with
    the weights frozen into each compiled step, the guards left must still pick each engine's own."""
    path, _ = tiny_checkpoint
    first = LLM(str(path), dtype="float32", max_num_seqs=2)
    other, other_eager = (LLM(str(path), dtype="float32", max_num_seqs=2, enforce_eager=e) for e in (False, True))
    for llm in (other, other_eager):
        head = llm.engine.model.lm_head.weight
        with torch.no_grad():
            head.copy_(torch.randn(head.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    expected = _outputs(other_eager, PROMPTS)
    assert expected != reference
    for _ in range(2):  # the second round runs compiled steps that both engines have
        assert _outputs(first, PROMPTS) == reference
        assert _outputs(other, PROMPTS) == expected
    assert list(first.engine.runner.captured.steps) == list(other.engine.runner.captured.steps) == [(MAIN, 2, 4, 1)]


DECODE = """
import json, sys
from model_runtime import LLM, SamplingParams
llm = LLM(sys.argv[1], dtype="float32", max_num_seqs=1)
out = llm.generate([[5, 6, 7, 8, 9]], SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))
print(json.dumps({"tokens": out[0].outputs[0].token_ids, "steps": len(llm.engine.runner.captured.steps)}))
"""


def test_an_on_disk_compile_cache_serves_each_checkpoint_its_own_weights(tiny_checkpoint, tmp_path):
    """`serve --compile-cache-dir` keeps compiled steps between runs, and the weights are frozen into
    them: a second checkpoint of the same shapes, run after the first filled the cache, must still
    decode with its own weights."""
    path, model = tiny_checkpoint
    other = DeepseekV3ForCausalLM(model.config).eval()
    randomize_(other, seed=1)
    save_checkpoint(other, model.config, tmp_path / "other", dtype=torch.float32)
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), "HF_HUB_OFFLINE": "1"}
    for checkpoint, weights in ((path, model), (tmp_path / "other", other)):
        run = subprocess.run([sys.executable, "-c", DECODE, str(checkpoint)], env=env, capture_output=True,
                             text=True, timeout=600, check=True)
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result == {"tokens": greedy_reference(weights, [5, 6, 7, 8, 9], 12), "steps": 1}


def test_captured_mtp_verification_keeps_greedy_output(tiny_checkpoint, reference):
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", speculative_tokens=1, max_num_seqs=1)
    assert _outputs(llm, PROMPTS[1:]) == reference[1:]
    # one step verifies the last token + one draft and lets the MTP module catch up on those two positions
    assert sorted(llm.engine.runner.captured.steps) == [(VERIFY, 1, 4, 2)]
    stats = llm.stats()
    eager = LLM(str(path), dtype="float32", speculative_tokens=1, max_num_seqs=1, enforce_eager=True)
    assert _outputs(eager, PROMPTS[1:]) == reference[1:]
    # the compiled MTP step drafts what the eager one does: the same drafts proposed and accepted
    assert stats["spec_tokens_proposed"] == eager.stats()["spec_tokens_proposed"] > 0
    assert stats["spec_tokens_accepted"] == eager.stats()["spec_tokens_accepted"]


def test_captured_mtp_chain_drafts_as_eager_does(tiny_checkpoint, reference):
    """k = 2: the second draft comes from the MTP module run again on its own output (a second compiled step)."""
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", speculative_tokens=2, max_num_seqs=1)
    eager = LLM(str(path), dtype="float32", speculative_tokens=2, max_num_seqs=1, enforce_eager=True)
    assert _outputs(llm, PROMPTS[:1]) == _outputs(eager, PROMPTS[:1]) == reference[:1]
    assert sorted(llm.engine.runner.captured.steps) == [(VERIFY, 1, 4, 3), (0, 1, 4, 1)]
    stats, eager_stats = llm.stats(), eager.stats()
    assert stats["spec_tokens_proposed"] == eager_stats["spec_tokens_proposed"] > 0
    assert stats["spec_tokens_accepted"] == eager_stats["spec_tokens_accepted"]


def test_a_shape_that_cannot_compile_runs_eagerly(tiny_checkpoint, reference, monkeypatch):
    """No C++ compiler, say: the step is logged as failed and the requests still complete."""
    from model_runtime.engine import captured

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(captured.torch, "compile", broken)
    path, _ = tiny_checkpoint
    llm = LLM(str(path), dtype="float32", max_num_seqs=2)
    assert _outputs(llm, PROMPTS) == reference
    assert llm.engine.runner.captured.failed == {(MAIN, 2, 4, 1)} and not llm.engine.runner.captured.steps
