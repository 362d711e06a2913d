"""Sequence: one request's tokens, cache bookkeeping, and output text with stop handling."""
from __future__ import annotations

import enum
import time

import torch

from model_runtime.engine.logits_processors import with_request_processors
from model_runtime.engine.outputs import TokenLogprob
from model_runtime.engine.sampling_params import SamplingParams
from model_runtime.tokenizer import DeepSeekTokenizer


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class Sequence:
    def __init__(self, request_id: str, prompt_ids: list[int], params: SamplingParams, tokenizer: DeepSeekTokenizer,
                 max_new_tokens: int, seed: int):
        self.request_id = request_id
        self.prompt_ids = list(prompt_ids)
        self.output_ids: list[int] = []
        self.max_new_tokens = max_new_tokens  # the completion budget (engine/context_length.py)
        self.status = Status.WAITING
        self.finish_reason: str | None = None
        self.arrival = time.monotonic()
        # cache bookkeeping
        self.block_table: list[int] = []
        self.block_hashes: list[int] = []
        self.num_computed = 0  # positions whose latents are in the main layers' cache
        self.num_mtp_computed = 0  # positions whose MTP-layer entries are valid
        self.mtp_pending: list[torch.Tensor] = []  # main hidden states [hidden] of positions num_mtp_computed..
        self.drafts: list[int] = []  # MTP drafts to verify next step
        self.draft_probs: list[torch.Tensor | None] = []  # draft distributions (sampled requests)
        # sampling
        self.generator = torch.Generator().manual_seed(params.seed if params.seed is not None else seed)
        # text
        self._tokenizer = tokenizer
        self._detok = tokenizer.detokenizer(skip_special_tokens=params.skip_special_tokens)
        self.text = ""
        self._emitted = 0  # characters of `text` already handed out
        self._emitted_tokens = 0
        self.logprobs: list[TokenLogprob] = []
        self._stop_ids = set(params.stop_token_ids)
        if not params.ignore_eos:
            self._stop_ids.add(tokenizer.eos_id)
        self.params = with_request_processors(params, self.prompt_ids, self._stop_ids)

    @property
    def token_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.output_ids)

    @property
    def prefill_target(self) -> int:
        """Positions to compute before decoding: all of a fresh prompt (its last logits give the first
        token), or all but the last token of a preempted sequence (that token is decoded next)."""
        return len(self) - 1 if self.output_ids else len(self)

    @property
    def is_prefilling(self) -> bool:
        return self.num_computed < self.prefill_target

    def reset_for_recompute(self) -> None:
        """Preemption by recompute: forget every cached position; generated tokens are kept."""
        self.status = Status.WAITING
        self.block_hashes.clear()
        self.num_computed = self.num_mtp_computed = 0
        self.mtp_pending.clear()
        self.drafts, self.draft_probs = [], []

    @property
    def finished(self) -> bool:
        return self.status == Status.FINISHED

    def append(self, token_id: int, logprob: TokenLogprob | None = None) -> None:
        """Add one generated token and check every stop condition."""
        self.output_ids.append(token_id)
        if logprob is not None:
            self.logprobs.append(logprob)
        if token_id in self._stop_ids:  # before min_tokens only when nothing else was allowed (MinTokens)
            self.finish("stop")
            return
        self.text += self._detok.add(token_id)
        for stop in self.params.stop if len(self.output_ids) >= self.params.min_tokens else ():
            at = self.text.find(stop, max(0, self._emitted - len(stop)))
            if at != -1:
                self.text = self.text[:at]
                self.finish("stop")
                return
        if len(self.output_ids) >= self.max_new_tokens:
            self.finish("length")

    def finish(self, reason: str) -> None:
        self.status = Status.FINISHED
        self.finish_reason = reason

    def take_delta(self) -> tuple[list[int], str, list[TokenLogprob] | None]:
        """New tokens and text since the last call; text that may start a stop string is held back."""
        end = len(self.text)
        if not self.finished and self.params.stop:
            end = max(self._emitted, end - (max(len(s) for s in self.params.stop) - 1))
        delta = self.text[self._emitted : end]
        self._emitted = end
        ids = self.output_ids[self._emitted_tokens :]
        lps = self.logprobs[self._emitted_tokens :] if self.params.logprobs is not None else None
        self._emitted_tokens = len(self.output_ids)
        return ids, delta, lps
