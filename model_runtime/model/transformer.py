"""DeepseekV3ForCausalLM: embeddings, the decoder stack, final norm, output head, and MTP modules.

Parameter names equal the HF checkpoint's, so loading is a name-for-name copy. The MTP modules
live in `model.layers` after the main layers (`model.layers.{num_hidden_layers + k}`), as stored;
the main forward runs only the first `num_hidden_layers`.
"""
from __future__ import annotations

import torch
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.model.block import Block
from model_runtime.model.layers import RMSNorm
from model_runtime.model.mla import LatentCache
from model_runtime.model.moe import MoE
from model_runtime.model.mtp import MTPLayer
from model_runtime.model.rope import RotaryEmbedding


class DecoderStack(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.rotary = RotaryEmbedding(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        n = config.num_hidden_layers
        layers: list[nn.Module] = [Block(config, i, self.rotary) for i in range(n)]
        layers += [MTPLayer(config, n + k, self.rotary) for k in range(config.num_nextn_predict_layers)]
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class DeepseekV3ForCausalLM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = DecoderStack(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def fuse_experts(self) -> None:
        """Inference form of every MoE layer (see `MoE.fuse`)."""
        for module in self.modules():
            if isinstance(module, MoE):
                module.fuse()

    @property
    def mtp_layers(self) -> list[MTPLayer]:
        return list(self.model.layers[self.config.num_hidden_layers :])

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        """input_ids [B, T] -> final-normed hidden states [B, T, hidden]."""
        if positions is None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers[: self.config.num_hidden_layers]:
            x = layer(x, positions, cache, absorbed)
        return self.model.norm(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        """Contract 1: input_ids [B, T] -> logits [B, T, vocab_size] (no cache unless one is given)."""
        return self.lm_head(self.hidden_states(input_ids, positions, cache, absorbed))

    def mtp_hidden(
        self,
        depth: int,
        h_prev: torch.Tensor,
        next_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        """Run MTP module `depth` (0-based): see MTPLayer.predict. Drafting k > n_mtp reuses the last module."""
        layers = self.mtp_layers
        if not layers:
            raise ValueError("this checkpoint has no MTP layers (num_nextn_predict_layers = 0)")
        return layers[min(depth, len(layers) - 1)].predict(h_prev, next_ids, positions, cache, absorbed)

    def mtp_logits(self, depth: int, h: torch.Tensor) -> torch.Tensor:
        layers = self.mtp_layers
        return layers[min(depth, len(layers) - 1)].shared_head(h)
