"""A contiguous latent KV cache: one [B, max_len, kv_lora_rank + qk_rope_head_dim] buffer per layer.

The simple cache for single-batch generation and tests; the engine uses the paged cache.
Sequences in a batch share one length (left-aligned, no padding).
"""
from __future__ import annotations

import torch

from model_runtime.config import ModelConfig
from model_runtime.model.mla import GatheredAttention


class ContiguousLatentCache(GatheredAttention):
    def __init__(self, config: ModelConfig, batch_size: int, max_len: int, dtype: torch.dtype, device="cpu"):
        n_layers = config.num_hidden_layers + config.num_nextn_predict_layers
        self.kv_lora_rank = config.kv_lora_rank
        # [layers, B, max_len, kv_lora_rank + qk_rope_head_dim]
        self.latent = torch.zeros(n_layers, batch_size, max_len, config.kv_cache_dim, dtype=dtype, device=device)
        self.lengths = [0] * n_layers

    def update(self, layer_idx: int, latent: torch.Tensor):
        """Append latent [B, T, r + rope]; return the past [B, S, r + rope] and the mask [B, T, S+T]:
        all of the past, causal over the new tokens."""
        start, t = self.lengths[layer_idx], latent.shape[1]
        end = start + t
        if end > self.latent.shape[2]:
            raise ValueError(f"cache holds {self.latent.shape[2]} tokens; {end} requested")
        past = self.latent[layer_idx, :, :start]
        self.latent[layer_idx, :, start:end] = latent.to(self.latent.dtype)
        self.lengths[layer_idx] = end
        causal = torch.ones(t, t, dtype=torch.bool, device=latent.device).tril()
        mask = torch.cat([causal.new_ones(t, start), causal], dim=1)  # [T, S+T]
        return past, mask.unsqueeze(0).expand(latent.shape[0], -1, -1)

    def truncate(self, layer_idx: int, length: int) -> None:
        """Forget everything after `length` tokens (rejected speculative drafts)."""
        self.lengths[layer_idx] = min(self.lengths[layer_idx], length)
