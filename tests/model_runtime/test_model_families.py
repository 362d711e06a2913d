"""Checkpoints of the DeepSeek-V3 family load and match transformers on random weights with their
shapes, scaled down: DeepSeek-V3.1 (FP8 with UE8M0 power-of-two scales), Kimi-K2 (384 experts in
one group), Moonlight-16B-A3B (no q_lora, 64 experts, no YaRN) and DeepSeek-V2-Lite (softmax
gate, greedy top-6, YaRN with mscale)."""
import json
import math
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_runtime import CheckpointError, ConfigError, ModelConfig, load_model
from model_runtime.loader.fp8 import dequantize_block_fp8, quantize_block_fp8
from model_runtime.loader.save import _is_fp8_target, save_checkpoint
from tests.model_runtime.checkpoints import YARN, tiny_config, write_hf_checkpoint

BLOCK = (32, 32)
FAMILIES = {
    # V3.1: V3's architecture; what is new is the checkpoint's FP8 scale format (see the FP8 test)
    "deepseek_v3_1": tiny_config(intermediate_size=176, moe_intermediate_size=96,
                                 rope_scaling={**YARN, "factor": 40.0}),
    "kimi_k2": tiny_config(model_type="kimi_k2", n_routed_experts=384, n_group=1, topk_group=1, num_experts_per_tok=8,
                           moe_intermediate_size=8, first_k_dense_replace=1, num_hidden_layers=2,
                           routed_scaling_factor=2.827, rope_scaling={**YARN, "factor": 32.0, "beta_fast": 1.0}),
    "moonlight_16b_a3b": tiny_config(q_lora_rank=None, n_routed_experts=64, n_group=1, topk_group=1,
                                     num_experts_per_tok=6, n_shared_experts=2, moe_intermediate_size=16,
                                     first_k_dense_replace=1, routed_scaling_factor=2.446, rope_theta=50000.0),
    "deepseek_v2_lite": tiny_config(model_type="deepseek_v2", q_lora_rank=None, n_routed_experts=64,
                                    num_experts_per_tok=6, n_group=1, topk_group=1, n_shared_experts=2,
                                    moe_intermediate_size=16, first_k_dense_replace=1, topk_method="greedy",
                                    scoring_func="softmax", norm_topk_prob=False, routed_scaling_factor=1.0,
                                    rope_scaling={**YARN, "factor": 40.0, "mscale": 0.707, "mscale_all_dim": 0.707}),
}
IDS = torch.randint(0, 256, (2, 48), generator=torch.Generator().manual_seed(3))


def v2_softmax_scale_as_deepseek(model, config: dict) -> None:
    """transformers' DeepseekV2 port leaves out the YaRN softmax-scale correction that DeepSeek's own
    V2 code (and vLLM) apply, scale * mscale(factor, mscale_all_dim)^2; our runtime applies it, so
    the reference gets it too."""
    rope = config["rope_scaling"]
    mscale = 0.1 * rope["mscale_all_dim"] * math.log(rope["factor"]) + 1.0
    for layer in model.model.layers:
        layer.self_attn.scaling *= mscale * mscale


def max_diff(hf, ours) -> float:
    with torch.no_grad():
        return float((hf(IDS).logits - ours(IDS)).abs().max())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_matches_transformers(family, tmp_path):
    config = FAMILIES[family]
    hf = write_hf_checkpoint(tmp_path, config, seed=len(family))
    ours = load_model(tmp_path, dtype=torch.float32)
    assert ours.config.model_type == config["model_type"]
    if family == "deepseek_v2_lite":
        assert max_diff(hf, ours) > 1e-3  # the correction matters: without it the logits differ
        v2_softmax_scale_as_deepseek(hf, config)
    assert max_diff(hf, ours) <= 1e-4


def test_deepseek_v3_1_fp8_ue8m0_scales_match_transformers(tmp_path):
    """Weights quantised as V3.1 stores them (FP8 e4m3, one power-of-two scale per block, the
    config saying scale_fmt ue8m0) load to exactly the dequantised weights transformers runs."""

    def quantise_like_v3_1(model) -> None:
        with torch.no_grad():
            for name, weight in model.state_dict(keep_vars=True).items():
                if _is_fp8_target(name, weight):
                    q, scale = quantize_block_fp8(weight, BLOCK, "ue8m0")
                    weight.copy_(dequantize_block_fp8(q, scale, BLOCK))

    hf = write_hf_checkpoint(tmp_path / "hf", FAMILIES["deepseek_v3_1"], seed=5, prepare=quantise_like_v3_1)
    dense = load_model(tmp_path / "hf", dtype=torch.float32)
    v3_1 = replace(dense.config, weight_block_size=BLOCK, scale_fmt="ue8m0")
    fp8_dir = save_checkpoint(dense, v3_1, tmp_path / "fp8", dtype=torch.float32, fp8=True)
    quant = json.loads((fp8_dir / "config.json").read_text())["quantization_config"]
    assert quant["scale_fmt"] == "ue8m0" and quant["weight_block_size"] == list(BLOCK)
    stored = load_file(fp8_dir / "model.safetensors")
    scales = {k: v for k, v in stored.items() if k.endswith("_scale_inv")}
    assert scales and all(torch.equal(torch.exp2(torch.log2(s).round()), s) for s in scales.values())
    weights = {k.removesuffix("_scale_inv"): stored[k.removesuffix("_scale_inv")] for k in scales}
    assert any(s.shape[0] > 1 and s.shape[1] > 1 for s in scales.values())  # several blocks per weight
    assert any(w.shape[0] % BLOCK[0] or w.shape[1] % BLOCK[1] for w in weights.values())  # and partial edges
    assert all(w.dtype == torch.float8_e4m3fn for w in weights.values())
    loaded = load_model(fp8_dir, dtype=torch.float32)
    assert ModelConfig.from_pretrained(fp8_dir).scale_fmt == "ue8m0"
    assert max_diff(hf, loaded) <= 1e-4
    reference = loaded.state_dict()
    for dtype in (torch.float8_e8m0fnu, torch.uint8):  # the other ways UE8M0 scales are stored
        recast = {k: (v.to(torch.float8_e8m0fnu).view(torch.uint8) if dtype == torch.uint8 else v.to(dtype))
                  if k in scales else v for k, v in stored.items()}
        other = tmp_path / str(dtype)
        other.mkdir()
        (other / "config.json").write_text((fp8_dir / "config.json").read_text())
        save_file(recast, str(other / "model.safetensors"), metadata={"format": "pt"})
        state = load_model(other, dtype=torch.float32).state_dict()
        assert all(torch.equal(state[k], reference[k]) for k in reference), dtype
    config = json.loads((other / "config.json").read_text())
    del config["quantization_config"]["scale_fmt"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="scale_fmt must be ue8m0"):
        load_model(other)  # exponent bytes without the config saying so
    with pytest.raises(ConfigError, match="scale_fmt"):
        ModelConfig.from_dict({**config, "quantization_config": {"quant_method": "fp8", "scale_fmt": "e5m2"}})
