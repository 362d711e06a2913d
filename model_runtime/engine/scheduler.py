"""Scheduler: continuous batching with chunked prefill and preemption by recompute.

Each step: every decoding sequence gets one verification slot (its last token plus its MTP
drafts); the remaining token budget goes to prefill chunks, first of sequences already prefilling,
then of newly admitted ones. When blocks run out, the most recently arrived sequence is preempted:
its blocks are freed and it is recomputed later, keeping its generated tokens.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from model_runtime.engine.block_manager import BlockManager
from model_runtime.engine.config import EngineConfig
from model_runtime.engine.outputs import StepResult
from model_runtime.engine.sequence import Sequence, Status


@dataclass
class ScheduledBatch:
    decode: list[Sequence] = field(default_factory=list)
    prefill: list[tuple[Sequence, int]] = field(default_factory=list)  # (sequence, tokens this step)

    @property
    def empty(self) -> bool:
        return not self.decode and not self.prefill


class Scheduler:
    def __init__(self, config: EngineConfig, block_manager: BlockManager, speculative: bool):
        self.config = config
        self.blocks = block_manager
        self.speculative = speculative  # drafting is on: shared blocks need valid MTP-layer entries too
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        # Room past the verified tokens for the MTP draft chain: it writes up to 2k positions ahead.
        self.lookahead = 2 * config.speculative_tokens + 1

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def remove(self, seq: Sequence) -> None:
        """Drop a finished or aborted sequence and free its blocks at once."""
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self.blocks.release(seq.block_table)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.blocks.release(seq.block_table)
        seq.reset_for_recompute()
        self.waiting.appendleft(seq)

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self.config.max_num_batched_tokens
        # 1. decoding sequences, oldest first; preempt the newest when blocks run out
        for seq in sorted((s for s in self.running if not s.is_prefilling), key=lambda s: s.arrival):
            if seq not in self.running:
                continue  # preempted below for an older one
            while not self.blocks.grow(seq.block_table, len(seq) + self.lookahead):
                victim = max(self.running, key=lambda s: s.arrival)
                self._preempt(victim)
                if victim is seq:
                    break
            if seq.status == Status.RUNNING:
                batch.decode.append(seq)
                budget -= 1 + len(seq.drafts)
        # 2. chunks of sequences already prefilling
        for seq in sorted((s for s in self.running if s.is_prefilling), key=lambda s: s.arrival):
            if budget <= 0:
                break
            n = min(budget, seq.prefill_target - seq.num_computed)
            if not self.blocks.grow(seq.block_table, seq.num_computed + n + self.lookahead):
                break
            batch.prefill.append((seq, n))
            budget -= n
        # 3. admit waiting sequences
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            cached, hashes = self.blocks.match_prefix(seq.token_ids)
            self.blocks.acquire(cached)
            table = list(cached)
            computed = len(cached) * self.blocks.block_size
            n = min(budget, seq.prefill_target - computed)
            if not self.blocks.grow(table, computed + n + self.lookahead):
                self.blocks.release(table)
                break
            self.waiting.popleft()
            seq.block_table, seq.block_hashes = table, hashes
            seq.num_computed = seq.num_mtp_computed = computed
            seq.status = Status.RUNNING
            self.running.append(seq)
            if n > 0:
                batch.prefill.append((seq, n))
                budget -= n
        return batch

    def postprocess(self, results: dict[Sequence, StepResult]) -> None:
        """Append each sequence's new tokens (stop conditions checked token by token: tokens after a
        stop are dropped), free finished sequences, keep the others' drafts, publish full blocks."""
        for seq, result in results.items():
            for token, logprob in zip(result.tokens, result.logprobs, strict=True):
                seq.append(token, logprob)
                if seq.finished:
                    break
            if seq.finished:
                self.remove(seq)
                continue
            seq.drafts, seq.draft_probs = result.drafts, result.draft_probs
            computed = min(seq.num_computed, seq.num_mtp_computed) if self.speculative else seq.num_computed
            self.blocks.register(seq.block_table, seq.block_hashes, seq.token_ids, computed)
