"""Token sampling: greedy, temperature, top-k, top-p, per-request seeds, logprobs, and the
speculative-sampling acceptance rule (Leviathan et al. 2023; Chen et al. 2023) for MTP drafts."""
from __future__ import annotations

import torch

from model_runtime.engine.outputs import TokenLogprob
from model_runtime.engine.sampling_params import SamplingParams


def processed(logits: torch.Tensor, params: SamplingParams, generated: list[int]) -> torch.Tensor:
    """logits [V] after the request's logits processors (constrained decoding)."""
    for processor in params.logits_processors:
        logits = processor(generated, logits)
    return logits


def probabilities(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """logits [V] float32 -> the distribution sampled from (temperature, top-k, top-p applied)."""
    logits = logits / params.temperature
    if params.top_k > 0 and params.top_k < logits.shape[-1]:
        kth = logits.topk(params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < params.top_p  # always keeps the top token
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
        probs = probs / probs.sum()
    return probs


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> tuple[int, torch.Tensor | None]:
    """-> (token id, the distribution it came from; None when greedy)."""
    if params.greedy:
        return int(logits.argmax()), None
    probs = probabilities(logits, params)
    return int(torch.multinomial(probs, 1, generator=generator)), probs


def logprob_of(logits: torch.Tensor, token_id: int, top_n: int | None) -> TokenLogprob | None:
    if top_n is None:
        return None
    logp = logits.float().log_softmax(-1)
    top = {}
    if top_n > 0:
        values, ids = logp.topk(top_n)
        top = {int(i): float(v) for i, v in zip(ids, values, strict=True)}
    return TokenLogprob(token_id, float(logp[token_id]), top)


def verify_drafts(
    target_logits: torch.Tensor,
    drafts: list[int],
    draft_probs: list[torch.Tensor | None],
    params: SamplingParams,
    generator: torch.Generator,
) -> list[int]:
    """target_logits [k+1, V] for positions (last token, d_1..d_k) -> accepted drafts + one new token.

    Greedy: drafts are accepted while they equal the target's argmax, then the target's choice
    follows, so the output is exactly non-speculative greedy decoding. Sampled: draft d_i (drawn
    from q_i) is accepted with probability min(1, p_i(d_i) / q_i(d_i)); on rejection the new token is
    drawn from normalise(max(p_i - q_i, 0)); this leaves the output distribution equal to p.
    """
    out: list[int] = []
    for i, draft in enumerate(drafts):
        if params.greedy:
            choice = int(target_logits[i].argmax())
            if choice != draft:
                return out + [choice]
            out.append(draft)
            continue
        p = probabilities(target_logits[i], params)
        q = draft_probs[i]
        if torch.rand(1, generator=generator).item() < min(1.0, float(p[draft] / q[draft].clamp(min=1e-20))):
            out.append(draft)
            continue
        residual = (p - q).clamp(min=0)
        residual = residual / residual.sum() if residual.sum() > 0 else p
        return out + [int(torch.multinomial(residual, 1, generator=generator))]
    token, _ = sample(target_logits[len(drafts)], params, generator)
    return out + [token]


def accepted_greedy(choices: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
    """choices [B, k+1] (the target's argmax after the last token and each draft), drafts [B, k] ->
    accepted drafts per row [B]: the length of the prefix where the drafts equal the choices."""
    return (choices[:, :-1] == drafts).long().cumprod(dim=1).sum(dim=1)
