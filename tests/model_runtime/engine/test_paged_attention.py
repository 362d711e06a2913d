"""The paged attention kernel (model_runtime/engine/paged_attention.cpp) against the reference
absorbed attention over the gathered context, at the shapes decode, MTP verification and padded
rows give it, and its refusals of inputs it cannot serve."""
import pytest
import torch

from model_runtime.engine import paged_attention
from model_runtime.model.mla import latent_attention


@pytest.fixture(autouse=True, scope="module")
def kernel():
    assert paged_attention.load()  # builds it (the suite needs a C++ compiler, as Inductor does)


def _case(b, t, heads, s, d, r, starts, slots_total=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    storage = torch.randn(slots_total, d, generator=g)
    slots = torch.stack([torch.randperm(slots_total, generator=g)[:s] for _ in range(b)])  # [B, S]
    q, new = torch.randn(b, t * heads, d, generator=g), torch.randn(b, t, d, generator=g)
    return q, new, storage, slots, torch.tensor(starts)


def _reference(q, new, storage, slots, starts, heads, scale, r):
    b, t, s = new.shape[0], new.shape[1], slots.shape[1]
    visible = (torch.arange(s) < starts.unsqueeze(1)).unsqueeze(1).expand(b, t, s)  # [B, T, S]
    causal = torch.ones(t, t, dtype=torch.bool).tril().expand(b, t, t)
    return latent_attention(q, storage[slots], new, torch.cat([visible, causal], -1), heads, scale, r)


@pytest.mark.parametrize(("b", "t", "heads", "s", "d", "r", "starts"), [
    (3, 1, 3, 64, 576, 512, [64, 17, 0]),  # the bundled model's decode step; a padding row (start 0)
    (2, 3, 4, 32, 576, 512, [30, 5]),      # verification: last token + 2 drafts, causal among them
    (2, 2, 1, 16, 37, 29, [16, 40]),       # odd widths (vector tails); a start past the window is clamped
    (1, 1, 128, 48, 576, 512, [48]),       # DeepSeek-V3's 128 heads
])
def test_kernel_matches_the_gathered_reference(b, t, heads, s, d, r, starts):
    q, new, storage, slots, starts_t = _case(b, t, heads, s, d, r, starts)
    got = paged_attention.paged_latent_attention(q, new, storage, slots, starts_t, 0.11, r, heads)
    want = _reference(q, new, storage, slots, starts_t.clamp(max=s), heads, 0.11, r)
    assert got.shape == (b, t * heads, r)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_kernel_reads_a_strided_layer_of_the_storage_in_place():
    q, new, storage, slots, starts = _case(2, 1, 3, 16, 64, 48, [16, 9])
    layers = torch.stack([torch.zeros_like(storage), storage])  # [L, slots, D]: layer 1 is a view
    got = paged_attention.paged_latent_attention(q, new, layers[1], slots, starts, 0.2, 48, 3)
    torch.testing.assert_close(got, _reference(q, new, storage, slots, starts, 3, 0.2, 48), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("change", "message"), [
    ({"q": torch.zeros(1, 3, 64, dtype=torch.float64)}, "float32 only"),
    ({"slots": torch.full((1, 8), 10_000)}, "slot out of range"),
    ({"heads": 2}, "shapes disagree"),
])
def test_kernel_refuses_inputs_it_cannot_serve(change, message):
    args = {"q": torch.zeros(1, 3, 64), "new": torch.zeros(1, 1, 64), "layer": torch.zeros(50, 64),
            "slots": torch.zeros(1, 8, dtype=torch.long), "starts": torch.tensor([8]), "scale": 1.0,
            "kv_lora_rank": 32, "heads": 3} | change
    with pytest.raises(RuntimeError, match=message):
        paged_attention.paged_latent_attention(**args)


def test_the_kernel_applies_to_float32_cpu_storage_only():
    assert paged_attention.applies(torch.zeros(4, 8))
    assert not paged_attention.applies(torch.zeros(4, 8, dtype=torch.bfloat16))


def test_a_failed_build_leaves_the_reference_attention(monkeypatch, caplog):
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(cpp_extension, "load", broken)
    assert paged_attention.load.__wrapped__() is False
    assert "paged attention kernel failed" in caplog.text
