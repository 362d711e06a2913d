"""ModelConfig: the DeepSeek-V3 / V2 architecture fields of an HF `config.json`, validated once.

Every module of the model takes this one object; nothing else reads the JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

# kimi_k2 (Moonshot's Kimi-K2) is the DeepSeek-V3 architecture under its own name.
SUPPORTED_MODEL_TYPES = ("deepseek_v3", "deepseek_v2", "kimi_k2")
SCALE_FORMATS = (None, "ue8m0")  # FP8 block scales: any float32, or powers of two (DeepSeek-V3.1)


class ConfigError(ValueError):
    """A config.json that this runtime cannot serve, with the reason."""


@dataclass(frozen=True)
class YarnConfig:
    """YaRN rope scaling (`rope_scaling` with type "yarn")."""

    factor: float = 1.0
    original_max_position_embeddings: int = 4096
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0
    mscale_all_dim: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a DeepSeek-V3-family model (names as in the HF config)."""

    model_type: str = "deepseek_v3"
    vocab_size: int = 129280
    hidden_size: int = 7168
    intermediate_size: int = 18432
    moe_intermediate_size: int = 2048
    num_hidden_layers: int = 61
    num_attention_heads: int = 128
    # MLA
    q_lora_rank: int | None = 1536
    kv_lora_rank: int = 512
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    # DeepSeekMoE
    n_routed_experts: int | None = 256
    n_shared_experts: int | None = 1
    num_experts_per_tok: int | None = 8
    n_group: int = 8
    topk_group: int = 4
    topk_method: str = "noaux_tc"  # V3: noaux_tc; V2: greedy | group_limited_greedy
    scoring_func: str = "sigmoid"  # V3: sigmoid; V2: softmax
    norm_topk_prob: bool = True
    routed_scaling_factor: float = 2.5
    first_k_dense_replace: int = 3
    moe_layer_freq: int = 1
    # MTP
    num_nextn_predict_layers: int = 0
    # misc
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: YarnConfig | None = None
    rope_interleave: bool = True  # rope dims stored as (re, im) pairs, as DeepSeek's checkpoints are
    max_position_embeddings: int = 4096
    attention_bias: bool = False
    tie_word_embeddings: bool = False
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    initializer_range: float = 0.02
    # FP8 block quantisation of stored weights ([128, 128] for DeepSeek-V3); None for bf16/fp32.
    weight_block_size: tuple[int, int] | None = None
    scale_fmt: str | None = None  # "ue8m0": the block scales are powers of two (DeepSeek-V3.1)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ---- derived -------------------------------------------------------------------------
    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def kv_cache_dim(self) -> int:
        """Values cached per token per layer: the latent plus the shared rope key."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def is_moe_layer(self, layer_idx: int) -> bool:
        return (
            self.n_routed_experts is not None
            and layer_idx >= self.first_k_dense_replace
            and layer_idx % self.moe_layer_freq == 0
        )

    # ---- construction --------------------------------------------------------------------
    def __post_init__(self) -> None:
        problems = []
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            problems.append(f"model_type {self.model_type!r} is not one of {SUPPORTED_MODEL_TYPES}")
        if self.scale_fmt not in SCALE_FORMATS:
            problems.append(f"quantization_config.scale_fmt {self.scale_fmt!r} is not supported (ue8m0 or none)")
        if self.qk_rope_head_dim % 2:
            problems.append("qk_rope_head_dim must be even")
        if self.hidden_act != "silu":
            problems.append(f"hidden_act {self.hidden_act!r} is not supported (silu only)")
        if self.n_routed_experts is not None:
            if self.n_routed_experts % self.n_group:
                problems.append("n_routed_experts must be divisible by n_group")
            if not 1 <= self.topk_group <= self.n_group:
                problems.append("topk_group must be in 1..n_group")
            if self.num_experts_per_tok is None or self.num_experts_per_tok > self.n_routed_experts:
                problems.append("num_experts_per_tok must be set and <= n_routed_experts")
            if self.topk_method not in ("noaux_tc", "greedy", "group_limited_greedy"):
                problems.append(f"topk_method {self.topk_method!r} is not supported")
            if self.scoring_func not in ("sigmoid", "softmax"):
                problems.append(f"scoring_func {self.scoring_func!r} is not supported")
            experts_per_group = self.n_routed_experts // max(self.n_group, 1)
            if self.topk_method == "noaux_tc" and experts_per_group < 2:
                problems.append("noaux_tc ranks groups by their top-2 scores: need >= 2 experts per group")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from an HF config dict; unknown keys are kept in `raw` and otherwise ignored."""
        model_type = data.get("model_type", "deepseek_v3")
        names = {f.name for f in fields(cls)} - {"rope_scaling", "raw", "weight_block_size", "scale_fmt"}
        kwargs: dict[str, Any] = {k: data[k] for k in names if k in data}
        if model_type == "deepseek_v2":
            # V2 defaults differ from V3: softmax gate, greedy top-k, no bias correction.
            kwargs.setdefault("scoring_func", "softmax")
            kwargs.setdefault("topk_method", "greedy")
            kwargs.setdefault("norm_topk_prob", False)
            kwargs.setdefault("routed_scaling_factor", 1.0)
            kwargs.setdefault("n_group", 1)
            kwargs.setdefault("topk_group", 1)
        kwargs["rope_scaling"] = _parse_rope_scaling(data.get("rope_scaling"))
        quant = data.get("quantization_config") or {}
        if quant:
            if quant.get("quant_method") != "fp8" or quant.get("fmt", "e4m3") != "e4m3":
                raise ConfigError(f"unsupported quantization_config {quant}")
            kwargs["weight_block_size"] = tuple(quant.get("weight_block_size", (128, 128)))
            kwargs["scale_fmt"] = quant.get("scale_fmt")
        if kwargs.get("n_group") is None:
            kwargs["n_group"] = 1
        if kwargs.get("topk_group") is None:
            kwargs["topk_group"] = 1
        return cls(**kwargs, raw=dict(data))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "ModelConfig":
        config_path = Path(path) / "config.json"
        if not config_path.is_file():
            raise ConfigError(f"{config_path} not found: a checkpoint directory needs config.json")
        try:
            data = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{config_path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """HF-style config dict (what our trainer writes as config.json)."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("raw", "weight_block_size", "scale_fmt", "rope_scaling")}
        if self.rope_scaling is not None:
            out["rope_scaling"] = {"type": "yarn", **asdict(self.rope_scaling)}
        else:
            out["rope_scaling"] = None
        if self.weight_block_size is not None:
            out["quantization_config"] = {
                "quant_method": "fp8",
                "fmt": "e4m3",
                "activation_scheme": "dynamic",
                "weight_block_size": list(self.weight_block_size),
            }
            if self.scale_fmt:
                out["quantization_config"]["scale_fmt"] = self.scale_fmt
        out["architectures"] = ["DeepseekV2ForCausalLM" if self.model_type == "deepseek_v2" else "DeepseekV3ForCausalLM"]
        return out


def _parse_rope_scaling(data: dict[str, Any] | None) -> YarnConfig | None:
    if not data:
        return None
    kind = data.get("type", data.get("rope_type"))
    if kind != "yarn":
        raise ConfigError(f"rope_scaling type {kind!r} is not supported (yarn only)")
    names = {f.name for f in fields(YarnConfig)}
    return YarnConfig(**{k: data[k] for k in names if k in data and data[k] is not None})
