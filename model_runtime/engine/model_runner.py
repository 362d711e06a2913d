"""ModelRunner: turns a scheduled batch into forward passes over the paged cache and returns the
token ids each sequence gains (and its next drafts); the scheduler appends them.

Per step: one main forward for the decoding sequences (grouped by draft count: each row is the
last token plus its drafts, so the main model verifies all drafts at once), one for prefill chunks
(rows padded to the longest chunk), then, when speculating, the MTP module catches up on the new
positions and drafts the next tokens (reusing itself on its own output for k > 1). Greedy decoding
with drafts runs verification and the catch-up as one compiled step (captured.VERIFY); sampled
requests without logits processors or logprobs decode in a compiled sampling step (captured.SAMPLE).
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

from model_runtime.engine.captured import MAIN, SAMPLE, SAMPLE_TEMPERATURE, VERIFY, CapturedDecode
from model_runtime.engine.kv_cache import PagedLatentCache
from model_runtime.engine.outputs import StepResult
from model_runtime.engine.sampler import accepted_greedy, logprob_of, processed, sample, verify_drafts
from model_runtime.engine.scheduler import ScheduledBatch
from model_runtime.engine.sequence import Sequence
from model_runtime.model import DeepseekV3ForCausalLM


class ModelRunner:
    def __init__(self, model: DeepseekV3ForCausalLM, cache: PagedLatentCache, speculative_tokens: int,
                 captured: CapturedDecode | None = None):
        self.model = model
        self.captured = captured
        self.cache = cache
        self.device = cache.device
        self.k = speculative_tokens if model.mtp_layers else 0
        self.spec_proposed = 0
        self.spec_accepted = 0

    # ---- helpers -------------------------------------------------------------------------
    def _paged(self, seqs: list[Sequence], starts: list[int], counts: list[int], forward) -> torch.Tensor:
        """Run forward(view) over the paged cache for rows of counts[b] new tokens at starts[b], then
        store the new latents of every layer it ran with one index write. Returns its output."""
        bs, device, t = self.cache.block_size, self.device, max(counts)
        n_blocks = -(-max(starts) // bs)  # blocks covering the past
        tables = torch.zeros(len(seqs), n_blocks, dtype=torch.long)  # [B, n_blocks]
        for i, seq in enumerate(seqs):
            n = min(len(seq.block_table), n_blocks)
            tables[i, :n] = torch.tensor(seq.block_table[:n], dtype=torch.long)
        view = self.cache.view(tables.to(device), torch.tensor(starts, device=device), t)
        out = forward(view)
        valid = torch.arange(t) < torch.tensor(counts).unsqueeze(1)  # [B, T]: real (not padding) tokens
        slots = self.cache.slots([s.block_table for s in seqs], starts, counts)
        self.cache.write(view.first_layer, slots, view.latents()[:, valid.to(device)])
        return out

    def _forward(self, seqs: list[Sequence], rows: list[list[int]], starts: list[int]) -> torch.Tensor:
        """Main model over padded rows of token ids -> hidden states [B, T_max, hidden]."""
        counts = [len(r) for r in rows]
        ids = torch.zeros(len(rows), max(counts), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        ids = ids.to(self.device)
        return self._paged(seqs, starts, counts, lambda view: self.model.hidden_states(ids, view.positions, view))

    def _token(self, seq: Sequence, logits: torch.Tensor) -> StepResult:
        """Sample one token from logits [V] (on the host, with the request's generator)."""
        logits = processed(logits.float().cpu(), seq.params, seq.output_ids)
        token, _ = sample(logits, seq.params, seq.generator)
        return StepResult([token], [logprob_of(logits, token, seq.params.logprobs)])

    def _speculates(self, seq: Sequence) -> bool:
        return self.k > 0 and not seq.params.logits_processors

    def _verified(self, seq: Sequence, hidden: torch.Tensor, result: StepResult) -> StepResult:
        """Cache bookkeeping once the last token and result.tokens[:-1] (accepted drafts) are in the
        cache: hidden [1+k, hidden] of the row."""
        seq.num_computed += len(result.tokens)
        seq.mtp_pending.append(hidden[: len(result.tokens)])
        return result

    # ---- step ----------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> dict[Sequence, StepResult]:
        """One step: the tokens each sequence gains (appending them is the scheduler's job) and,
        when speculating, its drafts for the next step."""
        results: dict[Sequence, StepResult] = {}
        groups: dict[int, list[Sequence]] = defaultdict(list)
        for seq in batch.decode:
            groups[len(seq.drafts)].append(seq)
        for seqs in groups.values():
            results.update(self._decode(seqs))
        if batch.prefill:
            results.update(self._prefill(batch.prefill))
        if self.k:
            active = [s for s, _ in batch.prefill] + batch.decode
            self._draft([s for s in active if s.mtp_pending and self._speculates(s)], results)
        return results

    def _decode(self, seqs: list[Sequence]) -> dict[Sequence, StepResult]:
        rows = [[s.token_ids[-1]] + s.drafts for s in seqs]
        starts = [s.num_computed for s in seqs]
        t = len(rows[0])
        if self.captured is not None and len(seqs) <= self.captured.max_batch and all(map(_plain, seqs)):
            if all(s.params.greedy for s in seqs):
                # drafts verified and the MTP catch-up in one step, once the MTP module is level with the main model
                kind = VERIFY if t > 1 and all(s.num_mtp_computed == s.num_computed for s in seqs) else MAIN
                if self.captured.available([(kind, len(seqs), max(starts) + t, t)]):
                    return self._decode_captured(seqs, rows, starts, kind)
            elif t == 1:
                kind = SAMPLE if any(s.params.filters and not s.params.greedy for s in seqs) else SAMPLE_TEMPERATURE
                if self.captured.available([(kind, len(seqs), max(starts) + 1, 1)]):
                    return self._sample_captured(seqs, rows, starts, kind)
        hidden = self._forward(seqs, rows, starts)  # [B, 1+k, hidden]
        logits = self.model.lm_head(hidden).float().cpu()  # [B, 1+k, V], sampled on the host
        results = {}
        for i, seq in enumerate(seqs):
            k = len(seq.drafts)
            if k == 0:
                result = self._token(seq, logits[i, 0])
            else:
                new = verify_drafts(logits[i, : k + 1], seq.drafts, seq.draft_probs, seq.params, seq.generator)
                self.spec_proposed += k
                self.spec_accepted += len(new) - 1
                result = StepResult(new, [logprob_of(logits[i, j], t, seq.params.logprobs) for j, t in enumerate(new)])
            results[seq] = self._verified(seq, hidden[i], result)
        return results

    def _decode_captured(self, seqs: list[Sequence], rows: list[list[int]], starts: list[int],
                         kind: int) -> dict[Sequence, StepResult]:
        """Greedy decode through a compiled step: the target's choices at every row position give
        the accepted drafts (those equal to it) and the next token, by tensor ops. VERIFY: the same
        step's MTP output at each row's last accepted position is its next first draft."""
        t = len(rows[0])
        tokens, hidden = self.captured(rows, starts, [s.block_table for s in seqs], kind)  # [B, T] ([B, 2T]), [B, T, hidden]
        choices, k = tokens[:, :t], t - 1
        accepted = accepted_greedy(choices, torch.tensor([r[1:] for r in rows]).view(len(rows), k)) if k \
            else torch.zeros(len(rows), dtype=torch.long)  # [B]
        self.spec_proposed += k * len(seqs)
        self.spec_accepted += int(accepted.sum())
        results = {}
        for i, (seq, row, n) in enumerate(zip(seqs, choices.tolist(), accepted.tolist(), strict=True)):
            result = StepResult(row[: n + 1], [None] * (n + 1))
            if kind == VERIFY:  # the MTP module caught up on the n + 1 verified positions in the step
                seq.num_computed += n + 1
                seq.num_mtp_computed += n + 1
                results[seq] = result
            else:
                results[seq] = self._verified(seq, hidden[i], result)
        if kind == VERIFY:
            rows_idx = torch.arange(len(seqs))
            h = hidden[rows_idx.to(hidden.device), accepted.to(hidden.device)].unsqueeze(1)  # [B, 1, hidden]
            self._chain(seqs, tokens[rows_idx, t + accepted], h, [s.num_mtp_computed for s in seqs], results)
        return results

    def _sample_captured(self, seqs: list[Sequence], rows: list[list[int]], starts: list[int],
                         kind: int) -> dict[Sequence, StepResult]:
        """Sampling inside a compiled step: each row's parameters and the one uniform its draw takes
        from the request's generator (none for a greedy row), as the eager sampler would draw it."""
        row_params = torch.tensor([
            [0.0, 0, 1.0, 0.0] if s.params.greedy else
            [s.params.temperature, s.params.top_k, s.params.top_p, float(torch.rand((), generator=s.generator))]
            for s in seqs])  # [B, 4]
        tokens, hidden = self.captured(rows, starts, [s.block_table for s in seqs], kind, row_params=row_params)
        return {seq: self._verified(seq, hidden[i], StepResult([token], [None]))
                for i, (seq, token) in enumerate(zip(seqs, tokens[:, 0].tolist(), strict=True))}

    def _prefill(self, chunks: list[tuple[Sequence, int]]) -> dict[Sequence, StepResult]:
        seqs = [s for s, _ in chunks]
        rows = [s.token_ids[s.num_computed : s.num_computed + n] for s, n in chunks]
        hidden = self._forward(seqs, rows, [s.num_computed for s in seqs])  # [B, T_max, hidden]
        results = {}
        for i, (seq, n) in enumerate(chunks):
            seq.num_computed += n
            if self.k:
                seq.mtp_pending.append(hidden[i, :n])
            # the prompt's last logits give the first token (a recomputed sequence has its own)
            results[seq] = StepResult() if seq.is_prefilling or seq.output_ids else \
                self._token(seq, self.model.lm_head(hidden[i, n - 1]))
        return results

    def _draft(self, seqs: list[Sequence], results: dict[Sequence, StepResult]) -> None:
        """MTP catch-up over every pending position (its next token is known, counting this step's
        results), then k drafts into results[seq].drafts for sequences that decode next."""
        if not seqs:
            return
        rows_h = [torch.cat(s.mtp_pending) for s in seqs]  # [P_i, hidden]
        counts = [h.shape[0] for h in rows_h]
        starts = [s.num_mtp_computed for s in seqs]
        h_prev = rows_h[0].new_zeros(len(seqs), max(counts), rows_h[0].shape[-1])
        next_ids = torch.zeros(len(seqs), max(counts), dtype=torch.long)
        for i, (seq, h) in enumerate(zip(seqs, rows_h, strict=True)):
            h_prev[i, : counts[i]] = h
            p0 = starts[i]
            known = seq.token_ids + results[seq].tokens
            next_ids[i, : counts[i]] = torch.tensor(known[p0 + 1 : p0 + 1 + counts[i]])
            seq.num_mtp_computed += counts[i]
            seq.mtp_pending.clear()
        drafting = [i for i, s in enumerate(seqs) if not s.is_prefilling]
        if self.captured is not None and len(drafting) == len(seqs) <= self.captured.max_batch \
                and max(counts) <= self.k + 1 and all(map(_greedy_only, seqs)):
            catch_up = (self._mtp_kind(0), len(seqs), max(starts) + self.k + 1, self.k + 1)  # as __call__ pads it
            if self.captured.available([catch_up]):  # the chain checks its own steps (_chain)
                return self._draft_captured(seqs, h_prev, next_ids, starts, counts, results)
        h = self._mtp(0, seqs, h_prev, next_ids, starts, counts)
        if not drafting:
            return
        # continue the chain only for sequences that decode next: last valid row of each
        seqs = [seqs[i] for i in drafting]
        h = torch.stack([h[i, counts[i] - 1] for i in drafting]).unsqueeze(1)  # [B, 1, hidden]
        positions = [seqs[j].num_mtp_computed - 1 for j in range(len(seqs))]
        for depth in range(self.k):
            logits = self.model.mtp_logits(depth, h[:, 0]).float().cpu()  # [B, V]
            tokens = []
            for j, seq in enumerate(seqs):
                token, probs = sample(logits[j], seq.params, seq.generator)
                results[seq].drafts.append(token)
                results[seq].draft_probs.append(probs)
                tokens.append(token)
            if depth + 1 < self.k:
                positions = [p + 1 for p in positions]
                h = self._mtp(depth + 1, seqs, h, torch.tensor(tokens).unsqueeze(1), positions, [1] * len(seqs))

    def _draft_captured(self, seqs, h_prev, next_ids, starts, counts, results) -> None:
        """Greedy drafting through compiled MTP steps: the catch-up over the k+1 (or fewer) verified
        positions gives the first draft at each row's last one; each further depth is one more step."""
        tables = [s.block_table for s in seqs]
        pad = self.k + 1 - h_prev.shape[1]  # to the compiled width k+1
        rows = F.pad(next_ids, (0, pad)).tolist()  # [B, k+1]
        tokens, h = self.captured(rows, starts, tables, self._mtp_kind(0), F.pad(h_prev, (0, 0, 0, pad)), counts)  # [B, k+1], [B, k+1, hidden]
        last = torch.tensor(counts) - 1  # [B]: each row's last real position
        h = h[torch.arange(len(seqs), device=h.device), last.to(h.device)].unsqueeze(1)  # [B, 1, hidden]
        self._chain(seqs, tokens[torch.arange(len(seqs)), last], h, [s + c for s, c in zip(starts, counts, strict=True)],
                    results)

    def _chain(self, seqs: list[Sequence], drafts: torch.Tensor, h: torch.Tensor, positions: list[int],
               results: dict[Sequence, StepResult]) -> None:
        """Greedy first drafts [B] (host) into results, then depths 1..k-1: MTP over the previous depth's
        hidden h [B, 1, hidden] and draft at positions [B], compiled where the shape is ready."""
        tables = [s.block_table for s in seqs]
        for depth in range(self.k):
            for seq, token in zip(seqs, drafts.tolist(), strict=True):
                results[seq].drafts.append(token)
                results[seq].draft_probs.append(None)
            if depth + 1 == self.k:
                break
            kind = self._mtp_kind(depth + 1)
            if self.captured.available([(kind, len(seqs), max(positions) + 1, 1)]):
                tokens, h = self.captured(drafts.view(-1, 1).tolist(), positions, tables, kind, h)
                drafts = tokens[:, 0]
            else:
                h = self._mtp(depth + 1, seqs, h, drafts.view(-1, 1), positions, [1] * len(seqs))
                drafts = self.model.mtp_logits(depth + 1, h[:, 0]).float().argmax(-1).cpu()
            positions = [p + 1 for p in positions]

    def _mtp_kind(self, depth: int) -> int:
        """The MTP module that drafts at `depth` (drafting k > n_mtp reuses the last)."""
        return min(depth, len(self.model.mtp_layers) - 1)

    def _mtp(self, depth, seqs, h_prev, next_ids, starts, counts) -> torch.Tensor:
        next_ids = next_ids.to(self.device)
        return self._paged(seqs, starts, counts,
                           lambda view: self.model.mtp_hidden(depth, h_prev, next_ids, view.positions, view))


def _plain(seq: Sequence) -> bool:
    """A request a captured step can decode: no logits processors (constrained decoding, penalties,
    logit_bias, min_tokens), no logprobs; greedy or temperature/top-k/top-p sampling."""
    return not seq.params.logits_processors and seq.params.logprobs is None


def _greedy_only(seq: Sequence) -> bool:
    """A request the captured MTP steps can draft for: greedy and plain."""
    return seq.params.greedy and _plain(seq)
