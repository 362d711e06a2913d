"""Checkpoint loading: FP8 block weights in the real layout, sharding, MTP layers, clear errors."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model_runtime import CheckpointError, DeepseekV3ForCausalLM, ModelConfig, load_model
from model_runtime.loader.save import save_checkpoint
from tests.model_runtime.checkpoints import randomize_, tiny_config

# Dimensions above 128 and not multiples of it, so FP8 edge blocks are partial.
FP8_CONFIG = tiny_config(hidden_size=160, intermediate_size=200, moe_intermediate_size=136, q_lora_rank=136,
                         kv_lora_rank=144, num_nextn_predict_layers=1, num_hidden_layers=2)


def _random_model(cfg: dict, seed=0) -> tuple[DeepseekV3ForCausalLM, ModelConfig]:
    config = ModelConfig.from_dict(cfg)
    model = DeepseekV3ForCausalLM(config)
    randomize_(model, seed)
    return model, config


def _dequantize_by_hand(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    out = torch.empty(q.shape, dtype=torch.float32)
    for i in range(scale.shape[0]):
        for j in range(scale.shape[1]):
            rows, cols = slice(i * 128, (i + 1) * 128), slice(j * 128, (j + 1) * 128)
            out[rows, cols] = q[rows, cols].float() * scale[i, j]
    return out


@pytest.fixture(scope="module")
def fp8_checkpoint(tmp_path_factory):
    model, config = _random_model(FP8_CONFIG)
    path = save_checkpoint(model, config, tmp_path_factory.mktemp("fp8"), fp8=True, max_shard_bytes=400_000)
    return path, model


def test_fp8_checkpoint_has_the_real_layout(fp8_checkpoint):
    path, _ = fp8_checkpoint
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    assert len(set(index.values())) > 1, "expected several shards"
    assert any(k.startswith("model.layers.2.") for k in index), "MTP layer stored as model.layers.{num_hidden_layers}"
    name = "model.layers.1.self_attn.q_b_proj.weight"
    with safe_open(path / index[name], framework="pt") as f:
        w = f.get_tensor(name)
    with safe_open(path / index[name + "_scale_inv"], framework="pt") as f:
        s = f.get_tensor(name + "_scale_inv")
    assert w.dtype == torch.float8_e4m3fn and s.dtype == torch.float32
    assert tuple(s.shape) == (-(-w.shape[0] // 128), -(-w.shape[1] // 128))


def test_fp8_load_equals_dequantisation_by_hand(fp8_checkpoint):
    path, original = fp8_checkpoint
    loaded = load_model(path, dtype=torch.float32)
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    state = loaded.state_dict()
    checked = 0
    for name, file in index.items():
        if name.endswith("_scale_inv") or name + "_scale_inv" not in index:
            continue
        with safe_open(path / file, framework="pt") as f:
            q = f.get_tensor(name)
        with safe_open(path / index[name + "_scale_inv"], framework="pt") as f:
            s = f.get_tensor(name + "_scale_inv")
        assert torch.equal(state[name], _dequantize_by_hand(q, s)), name
        # and the quantisation itself is close to the original weight (e4m3: ~2 significant digits)
        ref = original.state_dict()[name].float()
        assert (state[name] - ref).abs().max() <= ref.abs().max() * 0.07, name
        checked += 1
    assert checked >= 10
    mtp = "model.layers.2.eh_proj.weight"
    assert torch.allclose(state[mtp], original.state_dict()[mtp].to(torch.bfloat16).float())


def test_fp8_model_runs_with_mtp(fp8_checkpoint):
    path, _ = fp8_checkpoint
    model = load_model(path, dtype=torch.bfloat16)
    ids = torch.randint(0, 256, (1, 8))
    with torch.no_grad():
        h = model.hidden_states(ids)
        draft = model.mtp_logits(0, model.mtp_hidden(0, h[:, :-1], ids[:, 1:], torch.arange(7)[None]))
    assert draft.shape == (1, 7, 256) and torch.isfinite(draft.float()).all()
    assert model.model.layers[1].mlp.gate.e_score_correction_bias.dtype == torch.float32


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    model, config = _random_model(tiny_config(num_hidden_layers=2))
    save_checkpoint(model, config, tmp_path, dtype=torch.float32)
    with safe_open(tmp_path / "model.safetensors", framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    del tensors["model.layers.1.self_attn.kv_b_proj.weight"]
    tensors["model.layers.7.extra.weight"] = torch.zeros(2)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path)
    assert "model.layers.1.self_attn.kv_b_proj.weight" in str(err.value)
    assert "model.layers.7.extra.weight" in str(err.value)


def test_shape_mismatch_and_missing_dir_are_clear(tmp_path):
    model, config = _random_model(tiny_config(num_hidden_layers=1, first_k_dense_replace=1))
    save_checkpoint(model, config, tmp_path, dtype=torch.float32)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["vocab_size"] = 300
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"(embed_tokens|lm_head)\.weight: checkpoint shape \(256, 64\) != model shape \(300, 64\)"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_missing_mtp_layer_is_an_error(tmp_path):
    model, config = _random_model(tiny_config(num_hidden_layers=2, num_nextn_predict_layers=0))
    save_checkpoint(model, config, tmp_path, dtype=torch.float32)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["num_nextn_predict_layers"] = 1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing tensors: .*model\.layers\.2\.eh_proj\.weight"):
        load_model(tmp_path)


def test_bf16_round_trip_is_exact(tmp_path):
    model, config = _random_model(tiny_config(num_hidden_layers=2, num_nextn_predict_layers=1))
    save_checkpoint(model, config, tmp_path, dtype=torch.bfloat16)
    loaded = load_model(tmp_path, dtype=torch.bfloat16)
    for name, tensor in model.state_dict().items():
        want = tensor.float() if name.endswith("e_score_correction_bias") else tensor.to(torch.bfloat16)
        assert torch.equal(loaded.state_dict()[name], want), name


def test_fp8_kept_in_memory_equals_the_dequantised_model(fp8_checkpoint):
    """keep_fp8: weights stay float8 (1 byte each), each matmul dequantises them: same logits bit for bit."""
    from model_runtime.model.fp8_linear import FP8Linear

    path, _ = fp8_checkpoint
    dense = load_model(path, dtype=torch.float32)
    kept = load_model(path, dtype=torch.float32, keep_fp8=True)
    fp8 = [m for m in kept.modules() if isinstance(m, FP8Linear)]
    assert fp8 and all(m.weight.dtype == torch.float8_e4m3fn for m in fp8)
    assert kept.model.layers[1].self_attn.kv_b_proj in fp8  # the absorbed path reads it too
    size = lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values())  # noqa: E731
    assert size(kept) < 0.6 * size(dense)
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(kept(ids), dense(ids))
        assert torch.equal(kept(ids, absorbed=True), dense(ids, absorbed=True))


def test_the_engine_serves_an_fp8_checkpoint_kept_fp8(fp8_checkpoint):
    """keep_fp8 steps run eagerly (its experts cannot be fused for the compiled step) and give the
    dequantised model's greedy output."""
    from model_runtime import LLM, SamplingParams

    path, _ = fp8_checkpoint
    params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    kept = LLM(str(path), dtype="float32", keep_fp8=True).generate([[5, 6, 7, 8]], params)
    dense = LLM(str(path), dtype="float32", enforce_eager=True).generate([[5, 6, 7, 8]], params)
    assert kept[0].outputs[0].token_ids == dense[0].outputs[0].token_ids
