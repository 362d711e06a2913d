"""Decoder block: pre-norm MLA and pre-norm feed-forward (dense MLP or DeepSeekMoE), each residual."""
from __future__ import annotations

import torch
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.model.layers import MLP, RMSNorm
from model_runtime.model.mla import MLA, LatentCache
from model_runtime.model.moe import MoE
from model_runtime.model.rope import RotaryEmbedding


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int, rotary: RotaryEmbedding):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = MLA(config, layer_idx, rotary)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MoE(config) if config.is_moe_layer(layer_idx) else MLP(config.hidden_size, config.intermediate_size)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), positions, cache, absorbed)
        return x + self.mlp(self.post_attention_layernorm(x))
