"""LLMEngine: requests in, incremental outputs out, one `step()` at a time (single-threaded)."""
from __future__ import annotations

import logging
import time

import torch

from model_runtime.engine.block_manager import BlockManager
from model_runtime.engine.captured import CapturedDecode
from model_runtime.engine.config import EngineConfig
from model_runtime.engine.context_length import completion_budget
from model_runtime.engine.kv_cache import PagedLatentCache
from model_runtime.engine.model_runner import ModelRunner
from model_runtime.engine.outputs import StepOutput
from model_runtime.engine.sampling_params import SamplingParams
from model_runtime.engine.scheduler import Scheduler
from model_runtime.engine.sequence import Sequence
from model_runtime.loader.load import load_model
from model_runtime.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


class LLMEngine:
    def __init__(self, config: EngineConfig):
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.config = config
        self.model = load_model(config.model, dtype=config.torch_dtype, device=config.device, keep_fp8=config.keep_fp8)
        self.model.fuse_experts()
        self.model_config = self.model.config
        self.tokenizer = load_tokenizer(config.model, config.chat_format)
        speculate = config.speculative_tokens > 0 and bool(self.model.mtp_layers)
        if config.speculative_tokens and not speculate:
            log.warning("checkpoint has no MTP layer: speculative decoding is off")
        self.cache_layers = self.model_config.num_hidden_layers + (1 if speculate else 0)
        per_token = PagedLatentCache.bytes_per_token(self.model_config, self.cache_layers, config.torch_dtype)
        num_blocks = config.kv_cache_memory_bytes // (per_token * config.block_size)
        lookahead = 2 * config.speculative_tokens + 1
        capacity = num_blocks * config.block_size - lookahead
        if capacity < 2:
            raise ValueError(f"kv_cache_memory_bytes={config.kv_cache_memory_bytes} holds no usable block")
        wanted = config.max_model_len or self.model_config.max_position_embeddings
        self.max_model_len = min(wanted, capacity)
        if self.max_model_len < wanted:
            log.warning("max_model_len lowered from %d to %d to fit the KV cache", wanted, self.max_model_len)
        self.cache = PagedLatentCache(self.model_config, self.cache_layers, num_blocks, config.block_size, config.torch_dtype,
                                      config.device)
        self.block_manager = BlockManager(num_blocks, config.block_size, config.enable_prefix_caching)
        self.scheduler = Scheduler(config, self.block_manager, speculate)
        captured = None
        if not config.enforce_eager and not config.keep_fp8:  # FP8 experts run one matmul each: not capturable
            captured = CapturedDecode(self.model, self.cache, config.max_num_seqs, self.max_model_len + lookahead,
                                      background=config.compile_in_background)
        self.runner = ModelRunner(self.model, self.cache, config.speculative_tokens if speculate else 0, captured)
        if captured is not None and config.warmup:
            start = time.perf_counter()
            captured.warmup(config.max_num_seqs, self.runner.k)
            log.info("compiled %d decode steps in %.1f s", len(captured.steps), time.perf_counter() - start)
        self.sequences: dict[str, Sequence] = {}
        self._counter = 0

    # ---- requests ------------------------------------------------------------------------
    def validate(self, prompt_ids: list[int], params: SamplingParams) -> int:
        """The request's completion budget (`completion_budget`); ValueError with a user-facing
        message for a request this engine cannot serve (ContextLengthExceeded when it does not fit)."""
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        vocab = self.model_config.vocab_size
        if any(not 0 <= t < vocab for t in prompt_ids):
            raise ValueError(f"prompt token ids must be in [0, {vocab})")
        if any(not 0 <= t < vocab for t in params.logit_bias or ()):
            raise ValueError(f"logit_bias token ids must be in [0, {vocab})")
        return completion_budget(len(prompt_ids), params.max_tokens, self.max_model_len)

    def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams) -> None:
        budget = self.validate(prompt_ids, params)
        if request_id in self.sequences:
            raise ValueError(f"request id {request_id!r} is already running")
        self._counter += 1
        seq = Sequence(request_id, prompt_ids, params, self.tokenizer, budget, self.config.seed + self._counter)
        self.sequences[request_id] = seq
        self.scheduler.add(seq)

    def abort_request(self, request_id: str) -> None:
        seq = self.sequences.pop(request_id, None)
        if seq is not None:
            self.scheduler.remove(seq)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_work()

    # ---- stepping ------------------------------------------------------------------------
    def step(self) -> list[StepOutput]:
        batch = self.scheduler.schedule()
        if batch.empty:
            return []
        results = self.runner.run(batch)
        self.scheduler.postprocess(results)
        outputs = []
        for seq in results:
            if seq.finished:
                self.sequences.pop(seq.request_id, None)
            ids, text, logprobs = seq.take_delta()
            if ids or seq.finished:
                outputs.append(StepOutput(
                    seq.request_id, ids, text, seq.finished, seq.finish_reason, logprobs,
                    len(seq.prompt_ids), len(seq.output_ids),
                ))
        return outputs

    def stats(self) -> dict:
        bm = self.block_manager
        return {
            "kv_cache_bytes_per_token": PagedLatentCache.bytes_per_token(
                self.model_config, self.model_config.num_hidden_layers, self.config.torch_dtype),
            "kv_cache_layers": self.cache_layers,
            "kv_block_size": bm.block_size,
            "kv_blocks_total": bm.num_blocks,
            "kv_blocks_used": bm.num_used,
            "kv_blocks_free": bm.num_free,
            "num_running": len(self.scheduler.running),
            "num_waiting": len(self.scheduler.waiting),
            "spec_tokens_proposed": self.runner.spec_proposed,
            "spec_tokens_accepted": self.runner.spec_accepted,
            "prefix_cache_queried_tokens": bm.queried_tokens,
            "prefix_cache_hit_tokens": bm.hit_tokens,
            "max_model_len": self.max_model_len,
        }
