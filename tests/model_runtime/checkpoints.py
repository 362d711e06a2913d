"""Tiny random DeepSeek-V3 checkpoints for tests, written by `transformers` (the reference)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

BASE_CONFIG = dict(
    model_type="deepseek_v3",
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    moe_intermediate_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=4,
    q_lora_rank=32,
    kv_lora_rank=32,
    qk_nope_head_dim=16,
    qk_rope_head_dim=8,
    v_head_dim=16,
    n_routed_experts=16,
    n_shared_experts=1,
    num_experts_per_tok=4,
    n_group=4,
    topk_group=2,
    first_k_dense_replace=1,
    routed_scaling_factor=2.5,
    norm_topk_prob=True,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    rope_scaling=None,
    rms_norm_eps=1e-6,
    bos_token_id=0,
    eos_token_id=1,
    tie_word_embeddings=False,
)

YARN = {"type": "yarn", "factor": 8.0, "original_max_position_embeddings": 512, "beta_fast": 32,
        "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}


def tiny_config(**overrides) -> dict:
    cfg = dict(BASE_CONFIG)
    cfg.update(overrides)
    return cfg


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial values everywhere: norms around 1, routing bias small, linears ~N(0, 0.05)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict(keep_vars=True).items():
            if name.endswith("e_score_correction_bias"):
                p.copy_((torch.rand(p.shape, generator=gen) - 0.5) * 0.2)
            elif "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))


def write_hf_checkpoint(path: Path, config: dict, seed: int = 0, prepare=None):
    """Random weights through transformers' DeepseekV3ForCausalLM (DeepseekV2ForCausalLM for
    model_type deepseek_v2) and save_pretrained; returns the HF model. `prepare(model)`, when
    given, may change the weights before they are saved."""
    from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM

    v2 = config.get("model_type") == "deepseek_v2"
    config_class, model_class = (DeepseekV2Config, DeepseekV2ForCausalLM) if v2 else (DeepseekV3Config, DeepseekV3ForCausalLM)
    hf_config = config_class(**{k: v for k, v in config.items() if k != "model_type"})
    hf_config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = model_class(hf_config).eval()
    randomize_(model, seed)
    if prepare is not None:
        prepare(model)
    model.save_pretrained(path, safe_serialization=True)
    # Keep our config fields (e.g. num_nextn_predict_layers, a family's model_type) beside what transformers wrote.
    written = json.loads((path / "config.json").read_text())
    written.update({k: v for k, v in config.items() if k not in written or k == "model_type"})
    (path / "config.json").write_text(json.dumps(written, indent=2))
    return model
