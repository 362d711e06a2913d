"""Paged latent KV cache: per layer, blocks of `block_size` tokens x (kv_lora_rank + qk_rope_head_dim).

`PagedLatentCache` owns the storage; `BatchView` is what one forward pass sees: it implements the
attention's `LatentCache` protocol for a batch of rows, each with `starts[b]` positions already
cached (read back through its block table) and T new query tokens. The view never writes: it keeps
each layer's new latents, and the caller stores them all with one index write after the forward
(`PagedLatentCache.write`). The view is built from tensors alone, so a compiled step can build it.
`KernelBatchView` is the same window for the captured decode step, whose attention reads the
blocks in place (paged_attention.py) instead of gathering each row's context first.
"""
from __future__ import annotations

import torch

from model_runtime.config import ModelConfig
from model_runtime.engine.paged_attention import paged_latent_attention
from model_runtime.model.mla import GatheredAttention


class PagedLatentCache:
    def __init__(self, config: ModelConfig, num_layers: int, num_blocks: int, block_size: int, dtype: torch.dtype,
                 device: str | torch.device = "cpu"):
        self.block_size = block_size
        self.device = torch.device(device)
        # [layers, num_blocks * block_size, kv_lora_rank + qk_rope_head_dim]: slot = block * block_size + offset
        self.storage = torch.zeros(num_layers, num_blocks * block_size, config.kv_cache_dim, dtype=dtype, device=device)

    @staticmethod
    def bytes_per_token(config: ModelConfig, num_layers: int, dtype: torch.dtype) -> int:
        return num_layers * config.kv_cache_dim * torch.finfo(dtype).bits // 8

    def view(self, tables: torch.Tensor, starts: torch.Tensor, t: int) -> "BatchView":
        return BatchView(self.storage, self.block_size, tables, starts, t)

    def slots(self, block_tables: list[list[int]], starts: list[int], counts: list[int]) -> torch.Tensor:
        """Cache slots of the real new tokens, row by row (computed on the host: a few Python
        operations cost less than a dozen tiny tensor ops) -> [sum(counts)] on the cache's device."""
        bs = self.block_size
        slots = [table[p // bs] * bs + p % bs
                 for table, start, count in zip(block_tables, starts, counts, strict=True)
                 for p in range(start, start + count)]
        return torch.tensor(slots, dtype=torch.long).to(self.device)

    def write(self, first_layer: int, slots: torch.Tensor, latents: torch.Tensor) -> None:
        """latents [L, N, r + rope] of layers first_layer.. into slots [N]: one index write."""
        self.storage[first_layer : first_layer + latents.shape[0], slots] = latents.to(self.storage.dtype)


class BatchView(GatheredAttention):
    """One forward's window on the cache: rows of T query tokens at positions starts[b]...; the
    past is the first tables.shape[1] * block_size positions of each row, visible below starts[b]."""

    def __init__(self, storage: torch.Tensor, block_size: int, tables: torch.Tensor, starts: torch.Tensor, t: int):
        self.storage = storage
        b, n_blocks = tables.shape
        pos = torch.arange(n_blocks * block_size, device=tables.device)
        self.context_slots = tables[:, pos // block_size] * block_size + pos % block_size  # [B, S]
        self.starts = starts
        self.positions = starts.unsqueeze(1) + torch.arange(t, device=tables.device)  # [B, T]
        past = (pos.unsqueeze(0) < starts.unsqueeze(1)).unsqueeze(1).expand(b, t, -1)  # [B, T, S]
        causal = torch.ones(t, t, dtype=torch.bool, device=tables.device).tril().expand(b, t, t)  # [B, T, T]
        # a padding query (or row) sees at least itself, so its softmax stays finite
        self.mask = torch.cat([past, causal], dim=-1)  # [B, T, S+T]
        self.first_layer: int | None = None
        self.new: list[torch.Tensor] = []

    def _keep(self, layer_idx: int, latent: torch.Tensor) -> None:
        if self.first_layer is None:
            self.first_layer = layer_idx
        self.new.append(latent)

    def update(self, layer_idx: int, latent: torch.Tensor):
        """Keep latent [B, T, r + rope]; return the past [B, S, r + rope] and the mask [B, T, S+T]."""
        self._keep(layer_idx, latent)
        b, s = self.context_slots.shape
        # index_select, not layer[slots]: advanced indexing was 7x slower for this gather on CPU
        layer = self.storage[layer_idx]  # [slots, r + rope]
        past = torch.index_select(layer, 0, self.context_slots.view(-1)).view(b, s, layer.shape[-1])
        return past, self.mask

    def latents(self) -> torch.Tensor:
        """The new latents of every layer the forward ran: [L, B, T, r + rope]."""
        return torch.stack(self.new)


class KernelBatchView(BatchView):
    """BatchView whose absorbed attention runs the paged kernel over the storage in place (CPU,
    float32: paged_attention.applies); the naive path still gathers through `update`."""

    def attend(self, layer_idx: int, q: torch.Tensor, latent: torch.Tensor, heads: int, scale: float,
               kv_lora_rank: int) -> torch.Tensor:
        self._keep(layer_idx, latent)
        return paged_latent_attention(q, latent, self.storage[layer_idx], self.context_slots, self.starts, scale,
                                      kv_lora_rank, heads)
