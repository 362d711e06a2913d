"""FP8 block quantisation as DeepSeek-V3 stores it.

A weight [out, in] is stored as float8_e4m3fn plus `weight_scale_inv` [ceil(out/128), ceil(in/128)]
in float32, one scale per 128x128 block (edge blocks are partial). Dequantised = fp8 value x scale.

DeepSeek-V3.1 (`quantization_config.scale_fmt: "ue8m0"`) uses power-of-two scales (UE8M0: an
8-bit exponent, value 2^(e - 127)). They may be stored as float32, as float8_e8m0fnu, or as the
raw exponent bytes (uint8); `scale_values` decodes all three. `quantize_block_fp8` with
`scale_fmt="ue8m0"` rounds each block's scale up to a power of two, as V3.1's checkpoints have them.
"""
from __future__ import annotations

import torch

FP8_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448.0


def _expand_blocks(scale: torch.Tensor, shape: torch.Size, block: tuple[int, int]) -> torch.Tensor:
    """Per-block scales [ceil(out/bo), ceil(in/bi)] -> per-element [out, in]."""
    bo, bi = block
    return scale.repeat_interleave(bo, dim=0)[: shape[0]].repeat_interleave(bi, dim=1)[:, : shape[1]]


def scale_values(scale_inv: torch.Tensor, scale_fmt: str | None = None) -> torch.Tensor:
    """Stored block scales -> float32; uint8 scales are UE8M0 exponents and need scale_fmt "ue8m0"."""
    if scale_inv.dtype == torch.uint8:
        if scale_fmt != "ue8m0":
            raise ValueError("uint8 weight_scale_inv is a UE8M0 exponent: quantization_config.scale_fmt must be ue8m0")
        return scale_inv.view(torch.float8_e8m0fnu).float()
    return scale_inv.float()


def dequantize_block_fp8(
    weight: torch.Tensor, scale_inv: torch.Tensor, block: tuple[int, int] = (128, 128), dtype: torch.dtype = torch.float32,
    scale_fmt: str | None = None,
) -> torch.Tensor:
    if weight.dim() != 2:
        raise ValueError(f"FP8 block weights must be 2-D, got shape {tuple(weight.shape)}")
    bo, bi = block
    expected = (-(-weight.shape[0] // bo), -(-weight.shape[1] // bi))
    if tuple(scale_inv.shape) != expected:
        raise ValueError(f"weight_scale_inv has shape {tuple(scale_inv.shape)}, expected {expected} for weight {tuple(weight.shape)}")
    return (weight.float() * _expand_blocks(scale_values(scale_inv, scale_fmt), weight.shape, block)).to(dtype)


def quantize_block_fp8(
    weight: torch.Tensor, block: tuple[int, int] = (128, 128), scale_fmt: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """[out, in] float -> (float8_e4m3fn [out, in], scale_inv float32 [ceil(out/bo), ceil(in/bi)]);
    with scale_fmt "ue8m0" every scale is a power of two (rounded up, so no value overflows)."""
    bo, bi = block
    out_dim, in_dim = weight.shape
    rows, cols = -(-out_dim // bo), -(-in_dim // bi)
    padded = torch.zeros(rows * bo, cols * bi, dtype=torch.float32)
    padded[:out_dim, :in_dim] = weight.float()
    blocks = padded.view(rows, bo, cols, bi)  # [rows, bo, cols, bi]
    amax = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12)  # [rows, cols]
    scale_inv = amax / FP8_MAX
    if scale_fmt == "ue8m0":
        scale_inv = torch.exp2(torch.ceil(torch.log2(scale_inv)))
    q = (weight.float() / _expand_blocks(scale_inv, weight.shape, block)).to(torch.float8_e4m3fn)
    return q, scale_inv
