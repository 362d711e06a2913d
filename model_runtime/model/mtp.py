"""Multi-Token Prediction module (DeepSeek-V3 §2.2), stored as `model.layers.{num_hidden_layers + k}`.

Module k combines the previous depth's hidden state h_i (the main model's final hidden state for
k = 0) with the embedding of token t_{i+k+1}, runs one decoder block and predicts t_{i+k+2}
through the shared output head:

    h'_i = eh_proj([enorm(embed(t_{i+k+1})); hnorm(h_i)])      # checkpoint order: embedding first
    h_i^{k+1} = Block(h'_i);   logits = shared_head.head(shared_head.norm(h_i^{k+1}))

The concatenation order follows the released checkpoint (the "eh" in eh_proj) as vLLM and SGLang
read it. The checkpoint stores its own copies of embed_tokens and the head.
"""
from __future__ import annotations

import torch
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.model.block import Block
from model_runtime.model.layers import RMSNorm
from model_runtime.model.mla import LatentCache
from model_runtime.model.rope import RotaryEmbedding


class SharedHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(h))


class MTPLayer(Block):
    """A decoder block (its attention and feed-forward named as in any layer) plus the MTP glue."""

    def __init__(self, config: ModelConfig, layer_idx: int, rotary: RotaryEmbedding):
        super().__init__(config, layer_idx, rotary)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.enorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.hnorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)
        self.shared_head = SharedHead(config)

    def predict(
        self,
        h_prev: torch.Tensor,
        next_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        """h_prev [B, T, hidden] (depth k), next_ids [B, T] (t_{i+k+1}) -> h [B, T, hidden] (depth k+1)."""
        e = self.enorm(self.embed_tokens(next_ids))
        x = self.eh_proj(torch.cat([e, self.hnorm(h_prev)], dim=-1))  # [B, T, 2*hidden] -> [B, T, hidden]
        return super().forward(x, positions, cache, absorbed)
