"""The speculative-sampling acceptance rule leaves the output distribution equal to the target's."""
import torch

from model_runtime import SamplingParams
from model_runtime.engine.sampler import probabilities, verify_drafts


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


def test_greedy_verification_accepts_the_argmax_prefix():
    logits = torch.eye(6)[[1, 2, 3, 4]] * 5  # argmax at each position: 1, 2, 3, 4
    params = SamplingParams(temperature=0)
    gen = torch.Generator()
    assert verify_drafts(logits, [1, 2, 3], [None] * 3, params, gen) == [1, 2, 3, 4]
    assert verify_drafts(logits, [1, 5, 3], [None] * 3, params, gen) == [1, 2]
    assert verify_drafts(logits, [0, 2, 3], [None] * 3, params, gen) == [1]


def test_top_p_and_top_k_filter():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert (probabilities(logits, SamplingParams(top_k=2))[2:] == 0).all()
    probs = probabilities(logits, SamplingParams(top_p=0.5))
    assert probs[0] == 1.0 and probs[1:].sum() == 0
