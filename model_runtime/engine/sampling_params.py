"""SamplingParams: what a request asks of decoding (names as in vLLM and the OpenAI API)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

# (generated token ids so far, logits [vocab] float32) -> logits. Used for constrained decoding and
# for the penalties, logit_bias and min_tokens below (engine/logits_processors.py builds those).
LogitsProcessor = Callable[[list[int], torch.Tensor], torch.Tensor]


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1 or 0: no limit
    max_tokens: int | None = 16  # None: up to max_model_len
    stop: list[str] | str | None = None
    stop_token_ids: list[int] | None = None
    seed: int | None = None
    logprobs: int | None = None  # number of top alternatives to return per token (0: only the chosen)
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    logits_processors: list[LogitsProcessor] = field(default_factory=list)
    presence_penalty: float = 0.0  # OpenAI: minus this from every token already generated
    frequency_penalty: float = 0.0  # OpenAI: minus this times the token's count in the output
    repetition_penalty: float = 1.0  # vLLM/HF: logits of prompt and output tokens /p (positive) or *p
    logit_bias: dict[int, float] | None = None  # token id -> added to its logit (OpenAI: -100..100)
    min_tokens: int = 0  # EOS, stop token ids and stop strings end the output only after this many

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop or [])
        self.stop_token_ids = list(self.stop_token_ids or [])
        problems = []
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        if self.top_k is None or self.top_k < -1:
            problems.append("top_k must be -1 (off) or >= 0")
        if self.max_tokens is not None and self.max_tokens < 1:
            problems.append("max_tokens must be >= 1")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            problems.append("logprobs must be in 0..20")
        if any(not s for s in self.stop):
            problems.append("stop strings must be non-empty")
        if not (-2 <= self.presence_penalty <= 2 and -2 <= self.frequency_penalty <= 2):
            problems.append("presence_penalty and frequency_penalty must be in [-2, 2]")
        if not 0 < self.repetition_penalty <= 2:
            problems.append("repetition_penalty must be in (0, 2]")
        if any(not -100 <= bias <= 100 for bias in (self.logit_bias or {}).values()):
            problems.append("logit_bias values must be in [-100, 100]")
        if self.min_tokens < 0 or (self.max_tokens is not None and self.min_tokens > self.max_tokens):
            problems.append("min_tokens must be in 0..max_tokens")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def filters(self) -> bool:
        """Whether top-k or top-p cut the distribution (sampling then sorts the logits)."""
        return self.top_k > 0 or self.top_p < 1

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1
