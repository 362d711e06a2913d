"""Paged latent KV cache: per layer, blocks of `block_size` tokens x (kv_lora_rank + qk_rope_head_dim).

`PagedLatentCache` owns the storage; `BatchView` is what one forward pass sees: it implements the
attention's `LatentCache` protocol for a batch of sequences, each writing `counts[b]` new tokens at
positions `starts[b]...` through its block table and reading back its whole context.
"""
from __future__ import annotations

import torch

from model_runtime.config import ModelConfig


class PagedLatentCache:
    def __init__(self, config: ModelConfig, num_layers: int, num_blocks: int, block_size: int, dtype: torch.dtype, device="cpu"):
        self.kv_lora_rank = config.kv_lora_rank
        self.block_size = block_size
        # [layers, num_blocks * block_size, kv_lora_rank + qk_rope_head_dim]: slot = block * block_size + offset
        self.storage = torch.zeros(num_layers, num_blocks * block_size, config.kv_cache_dim, dtype=dtype, device=device)

    @staticmethod
    def bytes_per_token(config: ModelConfig, num_layers: int, dtype: torch.dtype) -> int:
        return num_layers * config.kv_cache_dim * torch.finfo(dtype).bits // 8

    def view(self, block_tables: list[list[int]], starts: list[int], counts: list[int]) -> "BatchView":
        return BatchView(self, block_tables, starts, counts)


class BatchView:
    """One forward's window on the cache. Batch rows are padded to max(counts) query tokens."""

    def __init__(self, cache: PagedLatentCache, block_tables: list[list[int]], starts: list[int], counts: list[int]):
        self.cache = cache
        bs = cache.block_size
        b, t_max = len(counts), max(counts)
        s_max = max(s + c for s, c in zip(starts, counts, strict=True))
        device = cache.storage.device
        tables = torch.zeros(b, -(-s_max // bs), dtype=torch.long)
        for i, table in enumerate(block_tables):
            n = min(len(table), tables.shape[1])
            tables[i, :n] = torch.tensor(table[:n], dtype=torch.long)
        pos = torch.arange(s_max)
        # slot of every context position of every row: [B, S_max]
        self.context_slots = (tables[:, pos // bs] * bs + pos % bs).to(device)
        start = torch.tensor(starts).unsqueeze(1)  # [B, 1]
        count = torch.tensor(counts).unsqueeze(1)
        q_pos = start + torch.arange(t_max).unsqueeze(0)  # [B, T]: absolute position of each query
        self.valid = torch.arange(t_max).unsqueeze(0) < count  # [B, T]: real (not padding) queries
        self.write_slots = self.context_slots.gather(1, q_pos.clamp(max=s_max - 1))[self.valid]  # [N_valid]
        mask = pos.view(1, 1, -1) <= q_pos.unsqueeze(-1)  # [B, T, S]: causal
        mask &= pos.view(1, 1, -1) < (start + count).unsqueeze(-1)
        mask[~self.valid] = False
        mask[..., 0] |= ~self.valid  # padding queries attend to one key so softmax stays finite
        self.mask = mask.to(device)
        self.valid = self.valid.to(device)
        self.positions = q_pos.to(device)

    def update(self, layer_idx: int, c_kv: torch.Tensor, k_pe: torch.Tensor):
        """Write c_kv [B, T, r] and k_pe [B, T, rope] of the real queries; return the context [B, S, *] and mask."""
        layer = self.cache.storage[layer_idx]  # [slots, r + rope]
        new = torch.cat([c_kv, k_pe], dim=-1)[self.valid]  # [N_valid, r + rope]
        layer[self.write_slots] = new.to(layer.dtype)
        # index_select, not layer[slots]: advanced indexing was 7x slower for this gather on CPU
        b, s = self.context_slots.shape
        ctx = torch.index_select(layer, 0, self.context_slots.view(-1)).view(b, s, -1).to(c_kv.dtype)  # [B, S, r + rope]
        r = self.cache.kv_lora_rank
        return ctx[..., :r], ctx[..., r:], self.mask
