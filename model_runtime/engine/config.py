"""EngineConfig: one validated object for everything the engine needs (nano-vllm style)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class EngineConfig:
    model: str
    dtype: str = "bfloat16"
    speculative_tokens: int = 0  # MTP drafts per step (DeepSeek uses 1)
    max_model_len: int | None = None  # default: the model's max_position_embeddings
    kv_cache_memory_bytes: int = 256 << 20
    block_size: int = 16
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 512  # prefill chunk budget per step
    enable_prefix_caching: bool = True
    seed: int = 0
    num_threads: int | None = None  # torch intra-op threads; None: leave as is
    chat_format: str | None = None  # a bundled chat format (chat_formats.py); None: the checkpoint's template
    device: str = "cpu"  # where the weights, the KV cache and every tensor of a step live ("cuda", "cuda:1")
    enforce_eager: bool = False  # True: no captured (compiled) decode step, eager forwards only
    compile_in_background: bool = False  # a shape's first steps run eagerly while it compiles (serve)
    keep_fp8: bool = False  # FP8 checkpoints: weights stay FP8 in memory, dequantised per matmul (eager steps)
    warmup: bool = False  # compile the decode step of every batch bucket at start-up, not at first use

    def __post_init__(self) -> None:
        problems = []
        if not Path(self.model).is_dir():
            problems.append(f"model directory {self.model!r} does not exist")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {sorted(DTYPES)}")
        if self.speculative_tokens < 0:
            problems.append("speculative_tokens must be >= 0")
        if self.block_size < 1 or self.max_num_seqs < 1:
            problems.append("block_size and max_num_seqs must be >= 1")
        if self.max_num_batched_tokens < 1 + self.speculative_tokens:
            problems.append("max_num_batched_tokens must leave room for one decode step")
        if self.max_model_len is not None and self.max_model_len < 2:
            problems.append("max_model_len must be >= 2")
        try:
            torch.device(self.device)
        except RuntimeError:
            problems.append(f"device {self.device!r} is not a torch device")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]
