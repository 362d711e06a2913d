"""Multi-head Latent Attention (DeepSeek-V2 §2.1, DeepSeek-V3 §2.1.1).

Per token, keys and values are compressed into one latent c_kv (kv_lora_rank values, RMS-normalised)
plus one rope key k_pe shared by all heads (qk_rope_head_dim values). Only these two are cached.

Two attention paths give the same result:
- naive: kv_b_proj expands the latent into per-head k_nope and v (prefill, training);
- absorbed: kv_b_proj's key half is folded into the query and its value half into the output, so
  attention runs against the latent itself and the cache is never re-expanded (decode).
"""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.model.fp8_linear import dense_weight
from model_runtime.model.layers import RMSNorm
from model_runtime.model.rope import RotaryEmbedding, softmax_scale


class LatentCache(Protocol):
    """What attention needs from a KV cache: the past context, and a note of this step's latents."""

    def update(self, layer_idx: int, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent [B, T, kv_lora_rank + qk_rope_head_dim] of the new tokens (the cache stores it, now or
        after the forward) -> (past [B, S, kv_lora_rank + qk_rope_head_dim], mask [B, T, S + T] bool
        over the keys [past; new])."""
        ...

    def attend(self, layer_idx: int, q: torch.Tensor, latent: torch.Tensor, heads: int, scale: float,
               kv_lora_rank: int) -> torch.Tensor:
        """The absorbed attention's core over [past; new] (noting latent as update does): q [B, T*H,
        r + rope] (absorbed queries, token-major), latent [B, T, r + rope] -> o_latent [B, T*H, r]."""
        ...


class GatheredAttention:
    """`LatentCache.attend` by the reference path: the past from `update`, then latent_attention."""

    def attend(self, layer_idx: int, q: torch.Tensor, latent: torch.Tensor, heads: int, scale: float,
               kv_lora_rank: int) -> torch.Tensor:
        past, mask = self.update(layer_idx, latent)
        return latent_attention(q, past.to(latent.dtype), latent, mask, heads, scale, kv_lora_rank)


def latent_attention(q: torch.Tensor, past: torch.Tensor, new: torch.Tensor, mask: torch.Tensor | None, heads: int,
                     scale: float, kv_lora_rank: int) -> torch.Tensor:
    """Multi-query attention against the latents: q [B, T*H, r + rope], past [B, S, r + rope], new
    [B, T, r + rope], mask [B, T, S+T] (None: causal over the new tokens) -> o_latent [B, T*H, r].

    The latent is one key/value head shared by all query heads, so the heads fold into the query
    axis, and each score is one batched matmul over [c_kv; k_pe] as the cache stores it: no per-head
    copy of the cache, no split of it. Past and new keys are scored separately and share one
    softmax, so the new latents never need to be written into the past first.
    """
    b, t, s, r = new.shape[0], new.shape[1], past.shape[1], kv_lora_rank
    scores = torch.cat([torch.bmm(q, past.transpose(1, 2)), torch.bmm(q, new.transpose(1, 2))], dim=-1)
    scores = scores.view(b, t, heads, s + t) * scale  # [B, T, H, S+T]
    if mask is None:  # no cache: causal over the new tokens
        mask = torch.ones(t, t, dtype=torch.bool, device=new.device).tril().unsqueeze(0)
    scores = scores.masked_fill(~mask.unsqueeze(2), float("-inf"))
    probs = scores.float().softmax(dim=-1).to(new.dtype).view(b, t * heads, s + t)
    o_latent = torch.bmm(probs[..., s:], new[..., :r])  # [B, T*H, r]
    if s:
        o_latent = torch.baddbmm(o_latent, probs[..., :s], past[..., :r])
    return o_latent


class MLA(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int, rotary: RotaryEmbedding):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads = config.num_attention_heads
        self.q_lora_rank = config.q_lora_rank
        self.kv_lora_rank = config.kv_lora_rank
        self.qk_nope_head_dim = config.qk_nope_head_dim
        self.qk_rope_head_dim = config.qk_rope_head_dim
        self.v_head_dim = config.v_head_dim
        self.softmax_scale = softmax_scale(config)
        self.rotary = rotary  # shared by all layers; owned by the model
        h, qk_head_dim = config.hidden_size, config.qk_head_dim
        if self.q_lora_rank is None:  # DeepSeek-V2-Lite: plain query projection
            self.q_proj = nn.Linear(h, self.n_heads * qk_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(h, self.q_lora_rank, bias=config.attention_bias)
            self.q_a_layernorm = RMSNorm(self.q_lora_rank)  # eps 1e-6 always, as in DeepSeek's code
            self.q_b_proj = nn.Linear(self.q_lora_rank, self.n_heads * qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(h, self.kv_lora_rank + self.qk_rope_head_dim, bias=config.attention_bias)
        self.kv_a_layernorm = RMSNorm(self.kv_lora_rank)
        self.kv_b_proj = nn.Linear(self.kv_lora_rank, self.n_heads * (self.qk_nope_head_dim + self.v_head_dim), bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.v_head_dim, h, bias=config.attention_bias)

    # ---- projections ---------------------------------------------------------------------
    def project(self, x: torch.Tensor, positions: torch.Tensor):
        """x [B, T, hidden] -> q_nope [B, T, H, nope], q_pe [B, T, H, rope], c_kv [B, T, kv_lora_rank], k_pe [B, T, rope]."""
        b, t, _ = x.shape
        q = self.q_proj(x) if self.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(b, t, self.n_heads, self.qk_nope_head_dim + self.qk_rope_head_dim)
        q_nope, q_pe = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        c_kv, k_pe = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        cos, sin = self.rotary(positions)
        return q_nope, self.rotary.rotate(q_pe, cos, sin), self.kv_a_layernorm(c_kv), self.rotary.rotate(k_pe, cos, sin)

    def _kv_b_heads(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """kv_b_proj weight [H*(nope+v), kv_lora_rank] -> W_UK [H, nope, r], W_UV [H, v, r]."""
        w = dense_weight(self.kv_b_proj, dtype)
        w = w.view(self.n_heads, self.qk_nope_head_dim + self.v_head_dim, self.kv_lora_rank)
        return w[:, : self.qk_nope_head_dim], w[:, self.qk_nope_head_dim :]

    # ---- attention paths -----------------------------------------------------------------
    def attend_naive(self, q_nope, q_pe, past, new, mask):
        """Expand the latents [past; new] to per-head K/V [B, S+T, H, *] and attend. Returns [B, T, H, v_head_dim]."""
        latent = torch.cat([past, new], dim=1) if past.shape[1] else new  # [B, S+T, r + rope]
        b, s, _ = latent.shape
        c_kv, k_pe = latent.split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        kv = self.kv_b_proj(c_kv).view(b, s, self.n_heads, self.qk_nope_head_dim + self.v_head_dim)
        k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_pe.unsqueeze(2).expand(-1, -1, self.n_heads, -1)], dim=-1)
        q = torch.cat([q_nope, q_pe], dim=-1)
        # SDPA wants [B, H, T, D]
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
            attn_mask=None if mask is None else mask.unsqueeze(1),
            is_causal=mask is None and q.shape[1] > 1,
            scale=self.softmax_scale,
        )
        return out.transpose(1, 2)

    def attend_absorbed(self, q_nope, q_pe, new, cache: LatentCache | None):
        """Attend against the latent: q_nope·W_UK scores c_kv directly, W_UV maps the result out; the
        rope part joins the absorbed query, so one query row scores [c_kv; k_pe] as cached. The core
        is the cache's (`LatentCache.attend`: a paged cache may read its blocks in place); without a
        cache the new tokens attend causally among themselves. Returns [B, T, H, v_head_dim]."""
        w_uk, w_uv = self._kv_b_heads(new.dtype)
        b, t, h, _ = q_nope.shape
        q_latent = torch.einsum("bthd,hdr->bthr", q_nope, w_uk)  # [B, T, H, kv_lora_rank]
        q = torch.cat([q_latent, q_pe], dim=-1).reshape(b, t * h, -1)  # [B, T*H, r + rope]
        if cache is None:
            o_latent = latent_attention(q, new[:, :0], new, None, h, self.softmax_scale, self.kv_lora_rank)
        else:
            o_latent = cache.attend(self.layer_idx, q, new, h, self.softmax_scale, self.kv_lora_rank)
        return torch.einsum("bthr,hvr->bthv", o_latent.view(b, t, h, self.kv_lora_rank), w_uv)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        cache: LatentCache | None = None,
        absorbed: bool | None = None,
    ) -> torch.Tensor:
        """x [B, T, hidden], positions [B, T] -> [B, T, hidden].

        Without a cache the T tokens attend causally among themselves. With one, the new latents are
        handed to it and the queries attend to its past and to themselves under its mask.
        `absorbed` defaults to True with a cache (decode) and False without (prefill, training).
        """
        b, t, _ = x.shape
        q_nope, q_pe, c_kv, k_pe = self.project(x, positions)
        new = torch.cat([c_kv, k_pe], dim=-1)  # [B, T, kv_lora_rank + rope]: what the cache stores
        if absorbed is None:
            absorbed = cache is not None
        if absorbed:
            out = self.attend_absorbed(q_nope, q_pe, new, cache)  # [B, T, H, v_head_dim]
        else:
            past, mask = (new[:, :0], None) if cache is None else cache.update(self.layer_idx, new)
            out = self.attend_naive(q_nope, q_pe, past.to(new.dtype), new, mask)
        return self.o_proj(out.reshape(b, t, self.n_heads * self.v_head_dim))
