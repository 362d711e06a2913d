"""Per-request logits processing that OpenAI and vLLM requests ask for, as `LogitsProcessor`s.

The runner calls every entry of `SamplingParams.logits_processors` on the logits [V] (float32) of
each sampled position, in order, with the ids generated so far (`sampler.processed`). A Sequence
appends the processors below to its own copy of the params (`with_request_processors`), after any
the caller gave (the constrained-decoding grammar), so:
- `RequestPenalties` applies, as vLLM does, the repetition penalty over prompt and output
  tokens (positive logits divided by it, negative ones multiplied), then OpenAI's
  `presence_penalty` (once per token present in the output) and `frequency_penalty` (times its
  count in the output), then `logit_bias` (added);
- `MinTokens` masks EOS and the stop token ids while fewer than `min_tokens` tokens exist. It
  never masks the last allowed token (a grammar that allows only EOS wins), so a distribution
  always remains.
A request with any of them decodes without MTP speculation (the runner speculates only for
requests without logits processors), like constrained decoding.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch

from model_runtime.engine.sampling_params import LogitsProcessor, SamplingParams


class RequestPenalties:
    """Repetition / presence / frequency penalties and logit_bias of one request."""

    def __init__(self, params: SamplingParams, prompt_ids: list[int]) -> None:
        self.repetition = params.repetition_penalty
        self.presence = params.presence_penalty
        self.frequency = params.frequency_penalty
        self.prompt_ids = torch.tensor(sorted(set(prompt_ids)), dtype=torch.long)
        bias = params.logit_bias or {}
        self.bias_ids = torch.tensor(list(bias), dtype=torch.long)
        self.bias_values = torch.tensor(list(bias.values()), dtype=torch.float32)

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        output = torch.tensor(generated, dtype=torch.long)
        if self.repetition != 1.0:
            seen = torch.cat([self.prompt_ids, output]).unique()
            values = logits[seen]
            logits[seen] = torch.where(values > 0, values / self.repetition, values * self.repetition)
        if (self.presence or self.frequency) and generated:
            ids, counts = output.unique(return_counts=True)
            logits[ids] -= self.presence + self.frequency * counts.to(logits.dtype)
        if len(self.bias_ids):
            logits[self.bias_ids] += self.bias_values
        return logits


class MinTokens:
    """EOS and stop ids are not sampled before `min_tokens` tokens have been generated."""

    def __init__(self, min_tokens: int, stop_ids: Iterable[int]) -> None:
        self.min_tokens = min_tokens
        self.stop_ids = torch.tensor(sorted(stop_ids), dtype=torch.long)

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        if len(generated) >= self.min_tokens or not len(self.stop_ids):
            return logits
        masked = logits.clone()
        masked[self.stop_ids] = float("-inf")
        return masked if torch.isfinite(masked).any() else logits


def with_request_processors(params: SamplingParams, prompt_ids: list[int], stop_ids: set[int]) -> SamplingParams:
    """`params`, or a copy whose processors end with this request's penalties and min_tokens."""
    extra: list[LogitsProcessor] = []
    if params.repetition_penalty != 1.0 or params.presence_penalty or params.frequency_penalty or params.logit_bias:
        extra.append(RequestPenalties(params, prompt_ids))
    if params.min_tokens:
        extra.append(MinTokens(params.min_tokens, stop_ids))
    if not extra:
        return params
    return dataclasses.replace(params, logits_processors=[*params.logits_processors, *extra])
