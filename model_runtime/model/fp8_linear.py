"""A linear layer whose weight stays FP8 in memory (DeepSeek-V3's 128x128 block scaling).

The weight is kept as stored, float8_e4m3fn [out, in] with `weight_scale_inv` [ceil(out/128),
ceil(in/128)], about 1 byte per weight; each forward dequantises it (the loader's own function, so
the result is bit-identical to loading dequantised weights) and runs one matmul. The forward is a
custom op: a compiled step sees it as one opaque kernel, so Inductor's freezing cannot fold the
dequantised weight into a full-precision constant.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_runtime.loader.fp8 import dequantize_block_fp8


@torch.library.custom_op("model_runtime::fp8_block_linear", mutates_args=())
def fp8_block_linear(x: torch.Tensor, weight: torch.Tensor, scale_inv: torch.Tensor, block_out: int, block_in: int,
                     ue8m0: bool) -> torch.Tensor:
    """x [..., in] @ dequantised weight [out, in]^T -> [..., out] in x's dtype."""
    w = dequantize_block_fp8(weight, scale_inv, (block_out, block_in), dtype=x.dtype, scale_fmt="ue8m0" if ue8m0 else None)
    return F.linear(x, w)


@fp8_block_linear.register_fake
def _fp8_block_linear_shape(x, weight, scale_inv, block_out, block_in, ue8m0):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


class FP8Linear(nn.Module):
    def __init__(self, weight: torch.Tensor, scale_inv: torch.Tensor, block: tuple[int, int], scale_fmt: str | None,
                 bias: torch.Tensor | None = None):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)  # float8_e4m3fn [out, in]
        self.weight_scale_inv = nn.Parameter(scale_inv, requires_grad=False)  # [ceil(out/bo), ceil(in/bi)]
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.block = block
        self.ue8m0 = scale_fmt == "ue8m0"

    def dequantized(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight [out, in] in `dtype`, as the loader would have stored it."""
        return dequantize_block_fp8(self.weight, self.weight_scale_inv, self.block, dtype=dtype,
                                    scale_fmt="ue8m0" if self.ue8m0 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = fp8_block_linear(x, self.weight, self.weight_scale_inv, self.block[0], self.block[1], self.ue8m0)
        return y if self.bias is None else y + self.bias


def dense_weight(linear: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """A linear layer's weight [out, in] in full precision, whether it is kept FP8 or not."""
    return linear.dequantized(dtype) if isinstance(linear, FP8Linear) else linear.weight
