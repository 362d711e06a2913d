"""The absorbed decode path (attention against the latent) equals the naive expanded path."""
import torch

from model_runtime import DeepseekV3ForCausalLM, ModelConfig
from model_runtime.model.cache import ContiguousLatentCache
from tests.model_runtime.checkpoints import YARN, randomize_, tiny_config


def _model(**overrides) -> DeepseekV3ForCausalLM:
    cfg = ModelConfig.from_dict(tiny_config(rope_scaling=YARN, num_nextn_predict_layers=1, **overrides))
    model = DeepseekV3ForCausalLM(cfg).eval()
    randomize_(model, seed=3)
    return model


def _decode(model, ids, absorbed: bool) -> torch.Tensor:
    """Prefill 8 tokens, then feed the rest one by one through a cache; logits of every step."""
    cache = ContiguousLatentCache(model.config, ids.shape[0], ids.shape[1], torch.float32)
    out = [model(ids[:, :8], torch.arange(8).expand(ids.shape[0], -1), cache, absorbed=absorbed)]
    for t in range(8, ids.shape[1]):
        out.append(model(ids[:, t : t + 1], torch.full((ids.shape[0], 1), t), cache, absorbed=absorbed))
    return torch.cat(out, dim=1)


def test_absorbed_decode_matches_naive_token_by_token():
    model = _model()
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(ids)  # naive, no cache
        naive = _decode(model, ids, absorbed=False)
        absorbed = _decode(model, ids, absorbed=True)
    assert (naive - full).abs().max() < 1e-4
    assert (absorbed - naive).abs().max() < 1e-4
    assert torch.equal(absorbed.argmax(-1), naive.argmax(-1))


def test_absorbed_path_without_a_cache_is_causal_like_naive():
    """`model(ids, absorbed=True)` builds its own causal mask (once raised NameError: undefined `q`)."""
    model = _model()
    ids = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        absorbed = model(ids, absorbed=True)
        naive = model(ids)
    assert absorbed.shape == naive.shape
    assert (absorbed - naive).abs().max() < 1e-4


def test_absorbed_path_without_q_lora():
    model = _model(q_lora_rank=None)
    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (_decode(model, ids, absorbed=True) - model(ids)).abs().max() < 1e-4


def test_greedy_generation_through_absorbed_cache_matches_recompute():
    model = _model()
    prompt = torch.randint(2, 256, (1, 10), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        seq = prompt
        for _ in range(16):
            seq = torch.cat([seq, model(seq)[:, -1:].argmax(-1)], dim=1)
        cache = ContiguousLatentCache(model.config, 1, 26, torch.float32)
        logits = model(prompt, torch.arange(10)[None], cache)
        cached = prompt
        for t in range(10, 26):
            nxt = logits[:, -1:].argmax(-1)
            cached = torch.cat([cached, nxt], dim=1)
            logits = model(nxt, torch.tensor([[t]]), cache)
    assert cached.tolist() == seq.tolist()
