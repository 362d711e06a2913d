"""Expert load balancing and its measurement (DeepSeek-V3 §2.1.2).

- "loss_free": after each step, bias_i += gamma * sign(mean load - load_i) on every MoE gate's
  e_score_correction_bias; the bias changes which experts are *selected*, never the weights.
- "aux_loss": the classic expert-level balance loss alpha * sum_i f_i * P_i (DeepSeek-V2 §2.2.1),
  f_i = E / (K T) * tokens routed to i, P_i = mean normalised affinity of i.
- "none": neither.
MaxVio = max load / mean load - 1 (0 is perfect balance).
"""
from __future__ import annotations

import torch
from torch import nn

from model_runtime.model.moe import MoE

MODES = ("loss_free", "aux_loss", "none")


def moe_layers(model: nn.Module) -> list[MoE]:
    return [m for m in model.modules() if isinstance(m, MoE)]


def expert_loads(model: nn.Module) -> torch.Tensor:
    """Tokens routed to each expert in the last forward, per MoE layer: [layers, E] (zeros for a
    layer that did not run, e.g. the MTP layer in a plain forward)."""
    loads = []
    for moe in moe_layers(model):
        if moe.last_routing is None:
            loads.append(torch.zeros(moe.n_experts))
            continue
        idx, _ = moe.last_routing
        loads.append(torch.bincount(idx.reshape(-1), minlength=moe.n_experts).float())
    return torch.stack(loads)


def max_violation(loads: torch.Tensor) -> torch.Tensor:
    """loads [layers, E] -> MaxVio per layer [layers]."""
    return loads.max(dim=-1).values / loads.mean(dim=-1).clamp(min=1e-9) - 1


def aux_balance_loss(model: nn.Module, alpha: float) -> torch.Tensor:
    total = torch.zeros(())
    for moe in moe_layers(model):
        if moe.last_routing is None:
            continue
        idx, scores = moe.last_routing  # [N, K], [N, E]
        n, k = idx.shape
        f = torch.bincount(idx.reshape(-1), minlength=moe.n_experts).float() * moe.n_experts / (k * n)
        p = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=0)
        total = total + (f.detach() * p).sum()
    return alpha * total


@torch.no_grad()
def update_bias(model: nn.Module, loads: torch.Tensor, gamma: float) -> None:
    """Auxiliary-loss-free step: push under-loaded experts up, over-loaded ones down."""
    for moe, load in zip(moe_layers(model), loads, strict=True):
        if load.sum() == 0:
            continue
        bias = moe.gate.e_score_correction_bias
        bias += gamma * torch.sign(load.mean() - load)
