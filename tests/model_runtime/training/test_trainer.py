"""Trainer: loss goes down, loss-free bias updates balance a skewed router, checkpoints round-trip
through our loader and transformers, resume continues exactly."""
import json

import numpy as np
import pytest
import torch

from model_runtime import DeepseekV3ForCausalLM, ModelConfig, load_model
from model_runtime.training.balance import expert_loads, max_violation, update_bias
from model_runtime.training.trainer import Trainer, TrainConfig
from tests.model_runtime.checkpoints import randomize_, tiny_config

TINY = tiny_config(num_nextn_predict_layers=1, num_hidden_layers=2, n_routed_experts=8, n_group=4, topk_group=2,
                   num_experts_per_tok=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A learnable token stream: a repeated pattern with noise, in the corpus format."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    pattern = rng.integers(2, 256, size=37)
    for split, n in (("train", 60_000), ("heldout", 6_000)):
        tokens = np.resize(pattern, n).astype(np.uint16)
        noise = rng.random(n) < 0.05
        tokens[noise] = rng.integers(2, 256, size=int(noise.sum()))
        tokens.tofile(root / f"{split}.bin")
    (root / "meta.json").write_text(json.dumps({"dtype": "uint16", "vocab_size": 256, "splits": {}}))
    config = root / "config.json"
    config.write_text(json.dumps(TINY))
    return root, config


def _config(corpus, out, **kw) -> TrainConfig:
    root, config = corpus
    base = dict(corpus=str(root), out=str(out), model_config=str(config), steps=30, batch_size=4, seq_len=32,
                lr=3e-3, warmup_steps=5, eval_every=30, eval_batches=4, save_every=15, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_steps_lower_both_losses(corpus, tmp_path):
    trainer = Trainer(_config(corpus, tmp_path, steps=25, eval_every=25))
    before = trainer.evaluate()
    after = trainer.train()
    assert after["main"] < before["main"] - 0.5
    assert after["mtp"] < before["mtp"] - 0.3
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 25 and all("max_vio" in r and "tokens_per_s" in r for r in log)


def test_resume_continues_exactly(corpus, tmp_path):
    straight = Trainer(_config(corpus, tmp_path / "a", steps=12, save_every=6, eval_every=12))
    straight.train()
    interrupted = Trainer(_config(corpus, tmp_path / "b", steps=12, save_every=6, eval_every=12))
    interrupted.train(until=6)
    resumed = Trainer(_config(corpus, tmp_path / "b", steps=12, save_every=6, eval_every=12, resume=True))
    assert resumed.step == 6
    resumed.train()
    for name, tensor in straight.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], tensor, atol=1e-5), name


def test_loss_free_bias_updates_move_a_skewed_load_toward_balance():
    config = ModelConfig.from_dict(TINY)
    model = DeepseekV3ForCausalLM(config).eval()
    randomize_(model, seed=0)
    gate = model.model.layers[1].mlp.gate
    with torch.no_grad():
        gate.e_score_correction_bias[:2] = 0.5  # start skewed: experts 0 and 1 win almost every token
    x = torch.randint(0, 256, (4, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(x)
        start = float(max_violation(expert_loads(model))[0])
        for _ in range(200):
            update_bias(model, expert_loads(model), gamma=0.01)
            model(x)
        end = float(max_violation(expert_loads(model))[0])
    assert start > 1.5 and end < start / 2
    bias = gate.e_score_correction_bias
    assert bias[:2].max() < 0.5  # the over-loaded experts were pushed down


def test_checkpoint_round_trips_through_our_loader_and_transformers(corpus, tmp_path):
    from transformers import DeepseekV3ForCausalLM as HFModel

    trainer = Trainer(_config(corpus, tmp_path, steps=3, save_every=3, eval_every=3))
    trainer.train()
    path = tmp_path / "checkpoint"
    saved = json.loads((path / "config.json").read_text())
    assert saved["num_nextn_predict_layers"] == 1 and saved["topk_method"] == "noaux_tc"
    ours = load_model(path)
    ids = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        trained = trainer.model.eval()(ids)
        assert torch.allclose(ours(ids), trained, atol=1e-5)
        hf = HFModel.from_pretrained(path, torch_dtype=torch.float32).eval()
        assert (hf(ids).logits - trained).abs().max() < 1e-4
    # the routing bias learned by the balancer is part of the checkpoint
    assert torch.equal(ours.model.layers[1].mlp.gate.e_score_correction_bias,
                       trainer.model.model.layers[1].mlp.gate.e_score_correction_bias)


def test_bad_train_config_is_a_clear_error(corpus, tmp_path):
    with pytest.raises(ValueError, match="balance must be one of"):
        _config(corpus, tmp_path, balance="magic")
    with pytest.raises(ValueError, match="exactly one of"):
        TrainConfig(corpus="x", out="y")
