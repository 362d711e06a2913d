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
    """logits [..., V] float32 -> the distributions sampled from, one per row (temperature, top-k,
    top-p applied)."""
    rows = logits.reshape(-1, logits.shape[-1])  # [N, V]
    n = rows.shape[0]
    probs = row_probabilities(rows, torch.full((n,), params.temperature), torch.full((n,), params.top_k),
                              torch.full((n,), params.top_p), filtered=params.filters)
    return probs.view_as(logits)


def row_probabilities(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor,
                      filtered: bool = True) -> torch.Tensor:
    """logits [B, V] float32 with each row's parameters temperature [B] (> 0), top_k [B] (<= 0 or
    >= V: off), top_p [B] (1: off) -> [B, V]: the distribution each row samples from. Tensor ops
    only, so a captured step runs it; `filtered=False` skips top-k/top-p (and their sort)."""
    logits = logits / temperature.unsqueeze(-1)
    if not filtered:
        return logits.softmax(-1)
    v = logits.shape[-1]
    sorted_logits, order = logits.sort(-1, descending=True)  # [B, V]
    k = torch.where((top_k > 0) & (top_k < v), top_k, v)  # [B]
    kth = sorted_logits.gather(-1, (k - 1).unsqueeze(-1))  # [B, 1]: ties with the k-th are kept
    probs = logits.masked_fill(logits < kth, float("-inf")).softmax(-1)
    sorted_probs = probs.gather(-1, order)  # [B, V], descending
    keep = (sorted_probs.cumsum(-1) - sorted_probs < top_p.unsqueeze(-1)) | (top_p >= 1).unsqueeze(-1)  # top token always
    probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
    return probs / probs.sum(-1, keepdim=True)


def inverse_cdf(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """probs [..., V], uniform [...] in [0, 1) -> token ids [...]: the first token whose cumulative
    probability exceeds uniform (times the total). One uniform per draw, drawn by the caller, so
    the eager path and a captured step given the same uniforms choose the same tokens."""
    cdf = probs.cumsum(-1)  # [..., V]
    target = (uniform * cdf[..., -1]).unsqueeze(-1)  # [..., 1]
    return torch.searchsorted(cdf, target, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> tuple[int, torch.Tensor | None]:
    """-> (token id, the distribution it came from; None when greedy). A sampled token takes one
    uniform from the request's generator (inverse CDF), as the captured step's sampling does."""
    if params.greedy:
        return int(logits.argmax()), None
    probs = probabilities(logits, params)
    return int(inverse_cdf(probs, torch.rand((), generator=generator))), probs


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
    from q_i) is accepted with probability min(1, p_i(d_i) / q_i(d_i)); at the first rejection the
    new token is drawn from normalise(max(p_i - q_i, 0)), after k acceptances from p_k; this leaves
    the output distribution equal to p. All k acceptance uniforms are drawn at once, then one
    multinomial draw: the distribution is that of drawing them draft by draft, the RNG stream is not.
    """
    k = len(drafts)
    if params.greedy:
        choices = target_logits.argmax(-1)  # [k+1]
        accepted = int(accepted_greedy(choices.view(1, k + 1), torch.tensor(drafts, dtype=torch.long).view(1, k)))
        return drafts[:accepted] + [int(choices[accepted])]
    p = probabilities(target_logits, params)  # [k+1, V]
    q = torch.stack(draft_probs) if k else p[:0]  # [k, V]
    accepted = _accepted_sampled(p[:k], q, torch.tensor(drafts, dtype=torch.long), generator)
    if accepted == k:
        final = p[k]
    else:
        residual = (p[accepted] - q[accepted]).clamp(min=0)  # [V]
        final = residual / residual.sum() if residual.sum() > 0 else p[accepted]
    return drafts[:accepted] + [int(torch.multinomial(final, 1, generator=generator))]


def _accepted_sampled(p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, generator: torch.Generator) -> int:
    """p, q [k, V] (target and draft distributions), drafts [k] -> how many drafts are accepted: the
    prefix where u_i < p_i(d_i) / q_i(d_i), with k uniforms u drawn in one call."""
    rows = torch.arange(len(drafts))
    ratio = p[rows, drafts] / q[rows, drafts].clamp(min=1e-20)  # [k]
    uniforms = torch.rand(len(drafts), generator=generator)  # [k]
    return int((uniforms < ratio).long().cumprod(0).sum())


def accepted_greedy(choices: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
    """choices [B, k+1] (the target's argmax after the last token and each draft), drafts [B, k] ->
    accepted drafts per row [B]: the length of the prefix where the drafts equal the choices."""
    return (choices[:, :-1] == drafts).long().cumprod(dim=1).sum(dim=1)
