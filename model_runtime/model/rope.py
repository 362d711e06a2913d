"""Rotary position embedding with YaRN scaling, as DeepSeek-V3 uses for 128K context.

Only the decoupled rope part of queries and keys (qk_rope_head_dim values) is rotated. The YaRN
mscale lands in two places, as in DeepSeek's reference code: the softmax scale gets
mscale(factor, mscale_all_dim)^2 (see `softmax_scale`), and cos/sin get
mscale(factor, mscale) / mscale(factor, mscale_all_dim), which is 1.0 for DeepSeek-V3's config.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from model_runtime.config import ModelConfig, YarnConfig


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def softmax_scale(config: ModelConfig) -> float:
    """1/sqrt(qk_head_dim), times YaRN's mscale^2 when the checkpoint asks for it (mscale_all_dim)."""
    scale = config.qk_head_dim**-0.5
    yarn = config.rope_scaling
    if yarn is not None and yarn.mscale_all_dim:
        scale *= yarn_mscale(yarn.factor, yarn.mscale_all_dim) ** 2
    return scale


def yarn_inv_freq(dim: int, base: float, yarn: YarnConfig) -> torch.Tensor:
    """Per-pair frequencies [dim/2]: extrapolated for fast dims, interpolated (/factor) for slow ones."""

    def correction_dim(num_rotations: float) -> float:
        return dim * math.log(yarn.original_max_position_embeddings / (num_rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(yarn.beta_fast)), 0)
    high = min(math.ceil(correction_dim(yarn.beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32, device="cpu") - low) / (high - low)).clamp(0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") / dim)
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (yarn.factor * pos_freqs)
    keep_extrapolated = 1 - ramp
    return interpolation * (1 - keep_extrapolated) + extrapolation * keep_extrapolated


class RotaryEmbedding(nn.Module):
    """cos/sin for arbitrary positions (computed on the fly: no table, any position up to the window).

    The frequencies are always computed on the CPU, also when the model is built on the meta device,
    since checkpoints do not store them.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim, base, yarn = config.qk_rope_head_dim, config.rope_theta, config.rope_scaling
        self.interleaved = config.rope_interleave
        if yarn is None:
            inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") / dim))
            self.attention_factor = 1.0
        else:
            inv_freq = yarn_inv_freq(dim, base, yarn)
            if yarn.mscale and yarn.mscale_all_dim:
                self.attention_factor = yarn_mscale(yarn.factor, yarn.mscale) / yarn_mscale(yarn.factor, yarn.mscale_all_dim)
            else:
                self.attention_factor = yarn_mscale(yarn.factor)
        self.register_buffer("inv_freq", inv_freq, persistent=False)


    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [B, T] -> cos, sin [B, T, qk_rope_head_dim/2] in float32."""
        freqs = positions.to(torch.float32).unsqueeze(-1) * self.inv_freq  # [B, T, d/2]
        return freqs.cos() * self.attention_factor, freqs.sin() * self.attention_factor

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate x [B, T, (heads,) d] by cos/sin [B, T, d/2]; the layout of x is kept.

        Interleaved checkpoints pair dims (2i, 2i+1); non-interleaved ones pair (i, i + d/2).
        """
        if x.dim() == 4:
            cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
        dtype = x.dtype
        x = x.float()
        if self.interleaved:
            x1, x2 = x[..., 0::2], x[..., 1::2]
            out = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)
        else:
            x1, x2 = x.chunk(2, dim=-1)
            out = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return out.to(dtype)
