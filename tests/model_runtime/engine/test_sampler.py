"""The speculative-sampling acceptance rule leaves the output distribution equal to the target's;
per-row sampling (what the captured step runs) agrees with the per-request sampler."""
import torch

from model_runtime import SamplingParams
from model_runtime.engine.sampler import inverse_cdf, probabilities, row_probabilities, sample, verify_drafts


def test_speculative_sampling_preserves_target_distribution():
    gen = torch.Generator().manual_seed(0)
    target_logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]])
    params = SamplingParams(temperature=1.0)
    p = probabilities(target_logits[0], params)
    q = torch.tensor([0.05, 0.05, 0.6, 0.2, 0.1])  # a poor draft distribution
    counts = torch.zeros(5)
    n = 20000
    for _ in range(n):
        draft = int(torch.multinomial(q, 1, generator=gen))
        first = verify_drafts(target_logits, [draft], [q], params, gen)[0]
        counts[first] += 1
    empirical = counts / n
    assert (empirical - p).abs().max() < 0.015, (empirical, p)


def test_speculative_sampling_matches_each_target_row_over_several_drafts():
    """Three drafts at once: wherever the output reaches position i (all before it accepted), its
    token there follows p_i, whether it is an accepted draft, a residual draw or the bonus token."""
    gen = torch.Generator().manual_seed(1)
    target_logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 1.5, 0.0, 0.5], [1.0, 1.0, -2.0, 0.0],
                                  [0.0, 0.0, 3.0, 0.0]])  # [k+1, V], k = 3
    params = SamplingParams(temperature=0.8, top_k=3)
    p = probabilities(target_logits, params)
    q = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])  # [k, V]
    counts, reached = torch.zeros(4, 4), torch.zeros(4)
    for _ in range(8000):
        drafts = [int(torch.multinomial(q[i], 1, generator=gen)) for i in range(3)]
        out = verify_drafts(target_logits, drafts, list(q), params, gen)
        assert 1 <= len(out) <= 4 and out[:-1] == drafts[: len(out) - 1]
        for i, token in enumerate(out):
            counts[i, token] += 1
            reached[i] += 1
    error = (counts / reached[:, None] - p).abs().amax(1)  # [k+1]
    assert reached[3] > 500 and (error < 4 * (0.25 / reached).sqrt()).all(), (error, reached)  # 4 sigma


def test_drafts_equal_to_the_target_are_all_accepted():
    target_logits = torch.tensor([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    params = SamplingParams(temperature=1.0)
    p = probabilities(target_logits, params)
    gen = torch.Generator().manual_seed(2)
    bonus = torch.zeros(3)
    for k in range(3):
        drafts = [1, 0][:k]
        for _ in range(2000 if k == 2 else 50):
            out = verify_drafts(target_logits[: k + 1], drafts, list(p[:k]), params, gen)
            assert len(out) == k + 1 and out[:k] == drafts  # q = p: the ratio is 1, always accepted
            bonus[out[-1]] += k == 2
    assert ((bonus / bonus.sum()) - p[2]).abs().max() < 0.04


def test_probabilities_of_rows_equal_each_row_alone():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0], [0.0, 4.0, 0.5, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    for params in (SamplingParams(temperature=0.7), SamplingParams(top_k=2), SamplingParams(top_p=0.6),
                   SamplingParams(temperature=1.3, top_k=4, top_p=0.8)):
        rows = probabilities(logits, params)  # [3, V]
        assert torch.allclose(rows, torch.stack([probabilities(row, params) for row in logits])), params


def test_row_probabilities_give_each_row_its_own_parameters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0], [0.0, 4.0, 0.5, 0.5, 1.0], [1.0, 2.0, 1.0, 3.0, 1.0]])
    params = [SamplingParams(temperature=0.7), SamplingParams(temperature=1.3, top_k=2),
              SamplingParams(temperature=1.0, top_k=4, top_p=0.6)]
    rows = row_probabilities(logits, torch.tensor([p.temperature for p in params]),
                             torch.tensor([p.top_k for p in params]), torch.tensor([p.top_p for p in params]))
    for row, logit_row, p in zip(rows, logits, params, strict=True):
        torch.testing.assert_close(row, probabilities(logit_row, p))


def test_inverse_cdf_samples_the_distribution_and_never_a_filtered_token():
    probs = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.3, 0.0])
    uniform = torch.rand(40_000, generator=torch.Generator().manual_seed(1))
    tokens = inverse_cdf(probs.expand(40_000, -1), uniform)
    counts = torch.bincount(tokens, minlength=6) / 40_000
    assert counts[[0, 2, 5]].sum() == 0
    assert (counts - probs).abs().max() < 0.01
    assert int(inverse_cdf(probs, torch.tensor(0.0))) == 1 and int(inverse_cdf(probs, torch.tensor(0.9999999))) == 4


def test_a_sampled_token_is_the_inverse_cdf_of_one_uniform_from_the_request_generator():
    logits = torch.tensor([0.5, 2.0, 1.0, -1.0])
    params = SamplingParams(temperature=0.8, top_p=0.9)
    token, probs = sample(logits, params, torch.Generator().manual_seed(5))
    uniform = torch.rand((), generator=torch.Generator().manual_seed(5))
    assert token == int(inverse_cdf(probabilities(logits, params), uniform))
    torch.testing.assert_close(probs, probabilities(logits, params))


def test_greedy_verification_accepts_the_argmax_prefix():
    logits = torch.eye(6)[[1, 2, 3, 4]] * 5  # argmax at each position: 1, 2, 3, 4
    params = SamplingParams(temperature=0)
    gen = torch.Generator()
    assert verify_drafts(logits, [1, 2, 3], [None] * 3, params, gen) == [1, 2, 3, 4]
    assert verify_drafts(logits, [1, 5, 3], [None] * 3, params, gen) == [1, 2]
    assert verify_drafts(logits, [0, 2, 3], [None] * 3, params, gen) == [1]
    assert verify_drafts(logits[:1], [], [], params, gen) == [1]


def test_top_p_and_top_k_filter():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert (probabilities(logits, SamplingParams(top_k=2))[2:] == 0).all()
    probs = probabilities(logits, SamplingParams(top_p=0.5))
    assert probs[0] == 1.0 and probs[1:].sum() == 0


def test_penalties_and_logit_bias_follow_openai_and_vllm():
    from model_runtime.engine.logits_processors import RequestPenalties

    logits = torch.tensor([1.0, 2.0, -1.0, 0.5, 4.0, 0.0])
    params = SamplingParams(presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=2.0,
                            logit_bias={5: -100.0, 0: 3.0})
    out = RequestPenalties(params, prompt_ids=[4])(generated=[2, 2, 3], logits=logits)
    # repetition over prompt + output (/2 if positive, *2 if negative), then presence + frequency x count, then bias
    expected = torch.tensor([1.0 + 3.0, 2.0, -2.0 - 0.5 - 0.5, 0.25 - 0.5 - 0.25, 2.0, -100.0])
    assert torch.allclose(out, expected), out
    assert torch.equal(logits, torch.tensor([1.0, 2.0, -1.0, 0.5, 4.0, 0.0]))  # input untouched


def test_min_tokens_masks_stop_ids_but_never_everything():
    from model_runtime.engine.logits_processors import MinTokens

    processor = MinTokens(3, stop_ids={1, 4})
    logits = torch.zeros(6)
    masked = processor([7, 8], logits)
    assert masked[1] == masked[4] == float("-inf") and torch.isfinite(masked[[0, 2, 3, 5]]).all()
    assert torch.equal(processor([7, 8, 9], logits), logits)
    only_eos = torch.full((6,), float("-inf"))
    only_eos[1] = 0.0
    assert torch.equal(processor([], only_eos), only_eos)  # a grammar that allows only EOS wins


def test_request_processors_are_added_only_when_asked():
    from model_runtime.engine.logits_processors import with_request_processors

    plain = SamplingParams()
    assert with_request_processors(plain, [1, 2], {1}) is plain
    biased = with_request_processors(SamplingParams(logit_bias={3: 1.0}, min_tokens=2), [1], {1})
    assert len(biased.logits_processors) == 2


def test_bad_penalty_values_are_refused():
    import pytest

    for kwargs in ({"presence_penalty": 3}, {"repetition_penalty": 0}, {"logit_bias": {1: 101}},
                   {"min_tokens": 5, "max_tokens": 4}):
        with pytest.raises(ValueError):
            SamplingParams(**kwargs)
