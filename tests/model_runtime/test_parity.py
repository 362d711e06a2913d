"""Parity with transformers' DeepseekV3ForCausalLM: same weights through our loader, same logits."""
import pytest
import torch

from model_runtime import load_model
from tests.model_runtime.checkpoints import YARN, tiny_config, write_hf_checkpoint

CASES = {
    "q_lora_groups4_yarn": tiny_config(rope_scaling=YARN),
    "no_q_lora_one_group": tiny_config(q_lora_rank=None, n_group=1, topk_group=1, first_k_dense_replace=2),
    "groups8_top3_yarn_mscale_ratio": tiny_config(
        n_routed_experts=32, n_group=8, topk_group=3, num_experts_per_tok=6,
        rope_scaling={**YARN, "factor": 40.0, "mscale": 0.9, "mscale_all_dim": 0.7},
    ),
    "all_dense": tiny_config(first_k_dense_replace=3, num_hidden_layers=2),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def pair(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    hf = write_hf_checkpoint(path, CASES[request.param], seed=len(request.param))
    ours = load_model(path, dtype=torch.float32)
    return hf, ours


def test_logits_match_transformers(pair):
    hf, ours = pair
    ids = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == (2, 64, 256)
    diff = (got - expected).abs().max().item()
    assert diff <= 1e-4, f"max abs logit diff {diff}"


def test_greedy_continuation_matches_transformers(pair):
    hf, ours = pair
    prompt = torch.randint(2, 256, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf.generate(prompt, max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0)
        seq = prompt
        for _ in range(32):
            nxt = ours(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert seq.tolist() == expected.tolist()
