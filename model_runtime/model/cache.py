"""A contiguous latent KV cache: one [B, max_len, kv_lora_rank + qk_rope_head_dim] buffer per layer.

The simple cache for single-batch generation and tests; the engine uses the paged cache.
Sequences in a batch share one length (left-aligned, no padding).
"""
from __future__ import annotations

import torch

from model_runtime.config import ModelConfig


class ContiguousLatentCache:
    def __init__(self, config: ModelConfig, batch_size: int, max_len: int, dtype: torch.dtype, device="cpu"):
        n_layers = config.num_hidden_layers + config.num_nextn_predict_layers
        self.kv_lora_rank = config.kv_lora_rank
        # [layers, B, max_len, kv_lora_rank + qk_rope_head_dim]
        self.latent = torch.zeros(n_layers, batch_size, max_len, config.kv_cache_dim, dtype=dtype, device=device)
        self.lengths = [0] * n_layers

    def update(self, layer_idx: int, c_kv: torch.Tensor, k_pe: torch.Tensor):
        """Append c_kv [B, T, r], k_pe [B, T, rope]; return the whole context and the causal mask [B, T, S]."""
        start, t = self.lengths[layer_idx], c_kv.shape[1]
        end = start + t
        if end > self.latent.shape[2]:
            raise ValueError(f"cache holds {self.latent.shape[2]} tokens; {end} requested")
        self.latent[layer_idx, :, start:end] = torch.cat([c_kv, k_pe], dim=-1).to(self.latent.dtype)
        self.lengths[layer_idx] = end
        ctx = self.latent[layer_idx, :, :end]
        q_pos = torch.arange(start, end, device=ctx.device).unsqueeze(1)  # [T, 1]
        k_pos = torch.arange(end, device=ctx.device).unsqueeze(0)  # [1, S]
        mask = (k_pos <= q_pos).unsqueeze(0).expand(c_kv.shape[0], -1, -1)  # [B, T, S]
        return ctx[..., : self.kv_lora_rank], ctx[..., self.kv_lora_rank :], mask

    def truncate(self, layer_idx: int, length: int) -> None:
        """Forget everything after `length` tokens (rejected speculative drafts)."""
        self.lengths[layer_idx] = min(self.lengths[layer_idx], length)
