"""Captured decode: one compiled, fixed-shape decode step per (batch bucket, context bucket).

As vLLM captures CUDA graphs, the step runs at a few fixed shapes: the batch is padded to the next
batch bucket (1, 2, 4, 8, ...), each row's block table to the next context bucket (a power of two
of blocks). Inside the graph, the paged cache is only read: the block tables are gathered into the
bucket's context, the new latents are returned, and the host stores them with one index write
(writing into the cache inside the graph made Inductor copy it at every layer). On CPU in float32 the
attention reads the blocks in place with a C++ kernel (paged_attention.py) instead of gathering them
into a per-row copy first. The choice of the next token runs in the graph too (greedy; or, in the
SAMPLE step, temperature/top-k/top-p per row with one uniform per row drawn on the host from the
request's generator), so a step is one call, one index write and one copy of the token ids to the
host. Logits processors (constrained decoding, penalties) and logprobs stay eager.

Compiled with `torch.compile(fullgraph=True, dynamic=False)` and Inductor's `freezing` (weights
become constants, folded into the kernels; on CPU each linear's weight is packed for MKL, one
packed copy per compiled shape) and `cpp_wrapper`, at first use of a shape or at warm-up.
Inductor caches the compiled code on disk (`TORCHINDUCTOR_CACHE_DIR`; `serve --compile-cache-dir` points it elsewhere while serving).
The eager forward over the same modules is the reference path.
"""
from __future__ import annotations

import functools
import logging
import sys
import threading
import time

import torch
import torch._inductor.config as inductor_config

from model_runtime.engine import paged_attention
from model_runtime.engine.kv_cache import BatchView, KernelBatchView, PagedLatentCache
from model_runtime.engine.sampler import inverse_cdf, row_probabilities
from model_runtime.model import DeepseekV3ForCausalLM

INDUCTOR_OPTIONS = {"freezing": True, "cpp_wrapper": True}
# Each (batch, context) bucket is one more compiled entry of the same step; Dynamo's default limit (8)
# would fall back to eager beyond the eighth.
torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)


def bucket(n: int, smallest: int = 1) -> int:
    """The power of two at or above n (at least `smallest`)."""
    size = smallest
    while size < n:
        size *= 2
    return size


log = logging.getLogger(__name__)
COMPILE_SWITCH_INTERVAL_S = 1e-4  # GIL switch interval while a background compile runs (default 5e-3)
MAIN = -1  # the step kind of the main model; k >= 0 is MTP module k
VERIFY = -2  # the main model over the last token and its drafts, then MTP module 0 over the same positions
SAMPLE = -3  # the main model over one token per row, each row sampling with its own parameters
SAMPLE_TEMPERATURE = -4  # SAMPLE where no row asks for top-k or top-p (OpenAI's defaults): no sort
SAMPLING = (SAMPLE, SAMPLE_TEMPERATURE)


class CapturedDecode:
    def __init__(self, model: DeepseekV3ForCausalLM, cache: PagedLatentCache, max_num_seqs: int, max_context: int,
                 background: bool = False):
        """max_context: the most positions a row reaches (max_model_len plus the drafts' lookahead).
        background: compile a missing shape in a thread while the caller's steps run eagerly (a
        server's first requests do not wait 20-50 s); otherwise compile it at once."""
        self.model = model
        self.cache = cache
        self.background = background
        self._compiler: threading.Thread | None = None
        self.max_batch = bucket(max_num_seqs)
        self.max_blocks = bucket(-(-max_context // cache.block_size))
        # (kind, batch, blocks, tokens per row) -> compiled step, and the seconds its compile took
        self.steps: dict[tuple[int, int, int, int], object] = {}
        self.compile_seconds: dict[tuple[int, int, int, int], float] = {}
        self.failed: set[tuple[int, int, int, int]] = set()  # shapes whose compile raised: they run eagerly
        # the steps' cache window: attention in place by the paged kernel where it applies, decided
        # (and the kernel built) at the first compile
        self.view_type: type[BatchView] | None = None

    def main_step(self, ids: torch.Tensor, starts: torch.Tensor, tables: torch.Tensor, storage: torch.Tensor):
        """ids [B, T], starts [B], tables [B, n_blocks] -> greedy tokens [B, T], hidden [B, T, hidden],
        new latents [L, B, T, r + rope]. Pure: reads the cache storage, writes nothing."""
        view = self.view_type(storage, self.cache.block_size, tables, starts, ids.shape[1])
        hidden = self.model.hidden_states(ids, view.positions, view)
        return self.model.lm_head(hidden).float().argmax(-1), hidden, view.latents()

    def sample_step(self, filtered: bool, ids: torch.Tensor, starts: torch.Tensor, tables: torch.Tensor,
                    storage: torch.Tensor, row_params: torch.Tensor):
        """ids [B, 1], row_params [B, 4]: each row's (temperature, 0 for greedy; top_k; top_p; the
        uniform its draw uses); filtered: apply top-k/top-p (False when no row asks) -> tokens [B, 1]
        (sampler.row_probabilities then inverse_cdf, as the eager sampler does with the same uniform),
        hidden [B, 1, hidden], new latents [L, B, 1, r + rope]."""
        view = self.view_type(storage, self.cache.block_size, tables, starts, ids.shape[1])
        hidden = self.model.hidden_states(ids, view.positions, view)
        logits = self.model.lm_head(hidden[:, -1]).float()  # [B, V]
        temperature, top_k, top_p, uniform = row_params.unbind(-1)  # [B] each
        greedy = temperature == 0
        probs = row_probabilities(logits, torch.where(greedy, 1.0, temperature), top_k.long(), top_p, filtered)
        tokens = torch.where(greedy, logits.argmax(-1), inverse_cdf(probs, uniform))  # [B]
        return tokens.unsqueeze(1), hidden, view.latents()

    def verify_step(self, ids: torch.Tensor, starts: torch.Tensor, tables: torch.Tensor, storage: torch.Tensor):
        """Speculative decoding in one graph. ids [B, 1+k]: each row's last token and k drafts. The main
        model's greedy choices c [B, 1+k] verify the drafts; MTP module 0 then runs over the same
        positions with the main hidden states and c as next tokens: at every position up to the last
        accepted draft those are the verified values, so its output there is the catch-up of the
        two-step path, and its greedy token at a row's last accepted position is the next first draft
        (positions past it are discarded by the caller).
        -> tokens [B, 2(1+k)] (c, then the MTP drafts), MTP hidden [B, 1+k, hidden], new latents
        [L + 1, B, 1+k, r + rope] (main layers, then the MTP layer: contiguous in the cache)."""
        view = self.view_type(storage, self.cache.block_size, tables, starts, ids.shape[1])
        hidden = self.model.hidden_states(ids, view.positions, view)
        choices = self.model.lm_head(hidden).float().argmax(-1)  # [B, 1+k]
        h_mtp = self.model.mtp_hidden(0, hidden, choices, view.positions, view)
        drafts = self.model.mtp_logits(0, h_mtp).float().argmax(-1)  # [B, 1+k]
        return torch.cat([choices, drafts], dim=1), h_mtp, view.latents()

    def mtp_step(self, depth: int, h_prev: torch.Tensor, ids: torch.Tensor, starts: torch.Tensor, tables: torch.Tensor,
                 storage: torch.Tensor):
        """MTP module `depth` over h_prev [B, T, hidden] and next tokens ids [B, T] -> its greedy
        drafts [B, T], hidden [B, T, hidden], new latents [1, B, T, r + rope]."""
        view = self.view_type(storage, self.cache.block_size, tables, starts, ids.shape[1])
        hidden = self.model.mtp_hidden(depth, h_prev, ids, view.positions, view)
        return self.model.mtp_logits(depth, hidden).float().argmax(-1), hidden, view.latents()

    def shape_for(self, kind: int, n: int, context: int, t: int) -> tuple[int, int, int, int]:
        """(kind, batch bucket, context bucket in blocks, tokens per row) for n rows reaching `context` positions."""
        return kind, bucket(n), min(bucket(-(-context // self.cache.block_size), 4), self.max_blocks), t

    def available(self, wanted: list[tuple[int, int, int, int]]) -> bool:
        """Whether steps of these (kind, rows, context positions, tokens per row) can run compiled now.
        Missing shapes compile at once, or in the background (False until they all have, and while
        any compile runs: Dynamo's stance is process-wide, so no compiled step overlaps a compile)."""
        shapes = [self.shape_for(*w) for w in wanted]
        missing = [shape for shape in shapes if shape not in self.steps]
        if (self._compiler is not None and self._compiler.is_alive()) or self.failed.intersection(shapes):
            return False
        if not missing:
            return True
        if not self.background:
            self._compile_all(missing)
            return not self.failed.intersection(shapes)
        self._compiler = threading.Thread(target=self._compile_all, args=(missing,), name="compile-decode", daemon=True)
        self._compiler.start()
        return False

    @torch.inference_mode()
    def _compile_all(self, shapes: list[tuple[int, int, int, int]]) -> None:
        # A shape that cannot compile (no C++ compiler, say) is logged and stays eager. In the
        # background the compile is Python holding the GIL; each op of an eager step gives the GIL up
        # and waits up to one switch interval to get it back. A short interval while compiling keeps
        # those steps from crawling (process-wide, so it is restored at once after).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(COMPILE_SWITCH_INTERVAL_S)
        try:
            for shape in shapes:
                try:
                    self._get(shape)
                except Exception:
                    log.exception("compiling the decode step %s failed; it runs eagerly", shape)
                    self.failed.add(shape)
        finally:
            sys.setswitchinterval(interval)

    def _get(self, shape: tuple[int, int, int, int]):
        step = self.steps.get(shape)
        if step is None:
            if self.view_type is None:
                self.view_type = KernelBatchView if paged_attention.applies(self.cache.storage) else BatchView
            kind, b, _, t = shape
            fn = {MAIN: self.main_step, VERIFY: self.verify_step,
                  SAMPLE: functools.partial(self.sample_step, True),
                  SAMPLE_TEMPERATURE: functools.partial(self.sample_step, False)}.get(kind) \
                or functools.partial(self.mtp_step, kind)
            step = torch.compile(fn, fullgraph=True, dynamic=False, options=INDUCTOR_OPTIONS)
            start = time.perf_counter()
            # Dynamo decides whether parameters become constants from the global flag while it traces;
            # torch.compile's `options` reach Inductor only after, too late (the graph took the
            # weights as inputs, nothing was frozen or packed, the step ran 1.3-1.5x slower).
            with inductor_config.patch(freezing=True):
                self._run(step, shape, [0] * b, [[0] * t] * b, [[]] * b)  # compiles
            self.compile_seconds[shape] = time.perf_counter() - start
            self.steps[shape] = step
        return step

    def _run(self, step, shape, starts: list[int], rows: list[list[int]], block_tables: list[list[int]],
             h_prev: torch.Tensor | None = None, row_params: torch.Tensor | None = None):
        """Pad to the shape, run the step; the real rows' outputs."""
        kind, b, n_blocks, t = shape
        device, n = self.cache.device, len(rows)
        ids = torch.zeros(b, t, dtype=torch.long)
        ids[:n] = torch.tensor(rows, dtype=torch.long)
        starts_t = torch.zeros(b, dtype=torch.long)
        starts_t[:n] = torch.tensor(starts, dtype=torch.long)
        tables = torch.zeros(b, n_blocks, dtype=torch.long)
        for i, table in enumerate(block_tables):
            k = min(len(table), n_blocks)
            tables[i, :k] = torch.tensor(table[:k], dtype=torch.long)
        inputs = (ids.to(device), starts_t.to(device), tables.to(device), self.cache.storage)
        if kind >= 0:  # an MTP module runs over the previous depth's hidden states
            h = self.model.lm_head.weight.new_zeros(b, t, self.model.config.hidden_size)  # [B, T, hidden]
            if h_prev is not None:
                h[:n] = h_prev
            inputs = (h, *inputs)
        if kind in SAMPLING:  # padding rows (and the compile's dummy rows): greedy
            padded = torch.zeros(b, 4)  # [B, 4]
            if row_params is not None:
                padded[:n] = row_params
            inputs = (*inputs, padded.to(device))
        # Once compiled, only the guards that pick among the shapes are checked: the weights are frozen
        # into the code, so the rest (hundreds of parameter guards, ~0.4 ms a step) cannot fail.
        with torch.compiler.set_stance(skip_guard_eval_unsafe=shape in self.steps):
            tokens, hidden, latents = step(*inputs)
        return tokens[:n], hidden[:n], latents[:, :n]

    @torch.inference_mode()
    def warmup(self, max_num_seqs: int, k: int) -> None:
        """Compile the decode step (with k drafts: the verify step) of every batch bucket up to
        max_num_seqs at the smallest context bucket."""
        n = 1
        while n <= bucket(max_num_seqs):
            self._get(self.shape_for(VERIFY if k else MAIN, n, 1, 1 + k))
            n *= 2

    def __call__(self, rows: list[list[int]], starts: list[int], block_tables: list[list[int]], kind: int = MAIN,
                 h_prev: torch.Tensor | None = None, counts: list[int] | None = None,
                 row_params: torch.Tensor | None = None):
        """Rows of T tokens at positions starts[b].. (the first counts[b] real, default all) through
        the main model, MTP module `kind` (with h_prev [n, T, hidden]), both (VERIFY: see verify_step)
        or the main model sampling each row (SAMPLE, SAMPLE_TEMPERATURE, with row_params [n, 4]: see sample_step)
        -> greedy tokens [n, T] ([n, 2T] for VERIFY) on the host, hidden [n, T, hidden]. Block tables
        must cover starts + T; the real tokens' latents are stored before returning."""
        t = len(rows[0])
        shape = self.shape_for(kind, len(rows), max(starts) + t, t)
        tokens, hidden, latents = self._run(self._get(shape), shape, starts, rows, block_tables, h_prev, row_params)
        first = 0 if kind < 0 else self.model.config.num_hidden_layers + kind
        if counts is None:
            counts, new = [t] * len(rows), latents.flatten(1, 2)  # [L, n * T, r + rope]
        else:
            valid = torch.arange(t) < torch.tensor(counts).unsqueeze(1)  # [n, T]
            new = latents[:, valid.to(latents.device)]  # [L, N_valid, r + rope]
        self.cache.write(first, self.cache.slots(block_tables, starts, counts), new)
        return tokens.cpu(), hidden
