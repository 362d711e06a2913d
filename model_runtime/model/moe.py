"""DeepSeekMoE: shared experts plus fine-grained routed experts (DeepSeek-V3 §2.1.2).

Gates:
- V3 (`noaux_tc`): sigmoid affinities; `e_score_correction_bias` is added for *selection only*
  (auxiliary-loss-free balancing); experts are chosen inside the `topk_group` groups whose top-2
  biased scores sum highest; the unbiased affinities of the chosen experts are normalised and
  multiplied by `routed_scaling_factor`.
- V2 (`greedy`, `group_limited_greedy`): softmax scores; top-k overall, or inside the groups with
  the highest max score.

Expert compute is grouped by expert: token copies are sorted by expert id and each expert runs over
its contiguous slice. For inference, `MoE.fuse()` stacks the experts' weights (each expert's
parameters become views of the stack, so names and state dict are unchanged) and the slices run as
one `torch._grouped_mm` per projection, with no host sync: the form a compiled step can capture.
With few token copies (at most half the experts: decoding a small batch) the chosen experts'
weights are gathered instead and run as batched matrix-vector products. Training (gradients on)
keeps one matmul per active expert.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.model.layers import MLP


@torch.library.custom_op("model_runtime::grouped_experts", mutates_args=())
def grouped_experts(x: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """SwiGLU experts over expert-sorted rows: x [N, hidden], w13 [E, 2*I, hidden] (gate rows, then up
    rows), w2 [E, hidden, I], offsets [E] int32 (end row of each expert's slice) -> [N, hidden].
    A custom op so that torch.compile treats it as one opaque kernel."""
    gate, up = torch._grouped_mm(x, w13.transpose(1, 2), offsets).chunk(2, dim=-1)  # [N, I] each
    return torch._grouped_mm(F.silu(gate) * up, w2.transpose(1, 2), offsets)


@grouped_experts.register_fake
def _grouped_experts_shape(x, w13, w2, offsets):
    return x.new_empty(x.shape[0], w2.shape[1])


class Gate(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.n_experts = config.n_routed_experts
        self.n_group = config.n_group
        self.topk_group = config.topk_group
        self.topk_method = config.topk_method
        self.scoring_func = config.scoring_func
        self.norm_topk_prob = config.norm_topk_prob
        self.routed_scaling_factor = config.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(self.n_experts, config.hidden_size))
        nn.init.normal_(self.weight, std=config.initializer_range)
        if self.topk_method == "noaux_tc":
            # Updated by the trainer's load balancer, never by gradients; kept in float32.
            self.register_buffer("e_score_correction_bias", torch.zeros(self.n_experts, dtype=torch.float32))

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, hidden] -> affinities [N, n_routed_experts] in float32."""
        logits = F.linear(x.float(), self.weight.float())
        return logits.sigmoid() if self.scoring_func == "sigmoid" else logits.softmax(dim=-1)

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """Affinities [N, E] -> chosen expert ids [N, top_k]."""
        n = scores.shape[0]
        if self.topk_method == "greedy":
            return scores.topk(self.top_k, dim=-1)[1]
        choice = scores + self.e_score_correction_bias if self.topk_method == "noaux_tc" else scores
        grouped = choice.view(n, self.n_group, self.n_experts // self.n_group)  # [N, G, E/G]
        if self.topk_method == "noaux_tc":
            group_scores = grouped.topk(2, dim=-1)[0].sum(dim=-1)  # [N, G]
        else:
            group_scores = grouped.amax(dim=-1)
        top_groups = group_scores.topk(self.topk_group, dim=-1)[1]  # [N, topk_group]
        keep = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, top_groups, True)
        masked = grouped.masked_fill(~keep.unsqueeze(-1), float("-inf")).view(n, self.n_experts)
        return masked.topk(self.top_k, dim=-1)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [N, hidden] -> expert ids [N, top_k], weights [N, top_k] (float32), affinities [N, E]."""
        scores = self.scores(x)
        idx = self.select(scores)
        weights = scores.gather(1, idx)
        if self.topk_method == "noaux_tc":
            if self.norm_topk_prob:
                weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
            weights = weights * self.routed_scaling_factor
        elif self.top_k > 1 and self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        else:
            weights = weights * self.routed_scaling_factor
        return idx, weights, scores


class MoE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_experts = config.n_routed_experts
        self.gate = Gate(config)
        self.experts = nn.ModuleList(MLP(config.hidden_size, config.moe_intermediate_size) for _ in range(self.n_experts))
        self.shared_experts = (
            MLP(config.hidden_size, config.moe_intermediate_size * config.n_shared_experts)
            if config.n_shared_experts
            else None
        )
        # Routing of the last forward, for load-balance statistics (trainer); not part of the state.
        self.last_routing: tuple[torch.Tensor, torch.Tensor] | None = None
        self.register_buffer("w13", None, persistent=False)  # stacked expert weights, once fused
        self.register_buffer("w2", None, persistent=False)

    def fuse(self) -> bool:
        """Stack the experts' weights for grouped matmuls; False (left as is) when they are kept FP8 or
        their sizes do not meet `_grouped_mm`'s 16-byte stride alignment."""
        first = self.experts[0]
        if not isinstance(first.down_proj, nn.Linear):  # weights kept FP8: dequantised per matmul instead
            return False
        hidden, inter = first.down_proj.weight.shape
        align = 16 // first.down_proj.weight.element_size()
        if hidden % align or inter % align:
            return False
        with torch.no_grad():
            w13 = torch.stack([torch.cat([e.gate_proj.weight, e.up_proj.weight]) for e in self.experts])  # [E, 2I, H]
            w2 = torch.stack([e.down_proj.weight for e in self.experts])  # [E, H, I]
        for i, expert in enumerate(self.experts):
            expert.gate_proj.weight = nn.Parameter(w13[i, :inter], requires_grad=False)
            expert.up_proj.weight = nn.Parameter(w13[i, inter:], requires_grad=False)
            expert.down_proj.weight = nn.Parameter(w2[i], requires_grad=False)
        self.w13, self.w2 = w13, w2
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # [N, hidden]
        idx, weights, scores = self.gate(x)
        self.last_routing = (idx, scores)
        y = self.routed(x, idx, weights)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y.view(shape)

    def routed(self, x: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Sum of weighted expert outputs. x [N, hidden], idx/weights [N, top_k] -> [N, hidden]."""
        top_k = idx.shape[1]
        flat = idx.reshape(-1)  # [N * top_k]: one row per (token, chosen expert)
        if self.w13 is not None and not torch.is_grad_enabled() and 2 * flat.shape[0] <= self.n_experts:
            return self._gathered(x, flat, weights)
        order = flat.argsort(stable=True)
        token_of = order // top_k
        # [E]; a one-hot sum rather than bincount, which Inductor cannot lower
        counts = (flat.unsqueeze(1) == torch.arange(self.n_experts, device=flat.device)).sum(0)
        x_sorted = x[token_of]  # [N * top_k, hidden], grouped by expert
        if self.w13 is not None and not torch.is_grad_enabled():
            out = grouped_experts(x_sorted, self.w13, self.w2, counts.cumsum(0).to(torch.int32))
        else:
            outputs, start = [], 0
            for expert_id, count in enumerate(counts.tolist()):
                if count:
                    outputs.append(self.experts[expert_id](x_sorted[start : start + count]))
                    start += count
            out = torch.cat(outputs)
        out = out.float() * weights.reshape(-1)[order].unsqueeze(-1)
        y = torch.zeros(x.shape, dtype=torch.float32, device=x.device).index_add_(0, token_of, out)
        return y.to(x.dtype)

    def _gathered(self, x: torch.Tensor, flat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Few token copies (decode of a small batch): gather just the chosen experts' weights and run
        them as batched matrix-vector products, reading no expert that was not picked.
        x [N, hidden], flat [N * top_k] expert ids, weights [N, top_k] -> [N, hidden]."""
        n, top_k = weights.shape
        x_rep = x.repeat_interleave(top_k, dim=0).unsqueeze(-1)  # [N * top_k, hidden, 1]
        gate, up = torch.bmm(self.w13[flat], x_rep).squeeze(-1).chunk(2, dim=-1)  # [N * top_k, I] each
        out = torch.bmm(self.w2[flat], (F.silu(gate) * up).unsqueeze(-1)).squeeze(-1)  # [N * top_k, hidden]
        out = out.float().view(n, top_k, -1) * weights.unsqueeze(-1)  # [N, top_k, hidden]
        return out.sum(dim=1).to(x.dtype)
