"""Fused experts (one grouped matmul per projection) give the per-expert loop's output."""
import torch

from model_runtime import DeepseekV3ForCausalLM, ModelConfig
from model_runtime.model.moe import MoE
from tests.model_runtime.checkpoints import randomize_, tiny_config


def test_fused_experts_match_the_per_expert_loop():
    model = DeepseekV3ForCausalLM(ModelConfig.from_dict(tiny_config())).eval()
    randomize_(model, seed=4)
    ids = torch.randint(0, 256, (3, 17), generator=torch.Generator().manual_seed(0))
    names = sorted(model.state_dict())
    with torch.no_grad():
        loop = model(ids)
        model.fuse_experts()
        fused = model(ids)
    moes = [m for m in model.modules() if isinstance(m, MoE)]
    assert moes and all(m.w13 is not None for m in moes)
    assert sorted(model.state_dict()) == names  # the stacks are not part of the state
    first = moes[0]
    assert first.experts[1].up_proj.weight.data_ptr() == first.w13[1, first.w2.shape[2]:].data_ptr()  # views
    assert (fused - loop).abs().max() < 1e-5
    assert torch.equal(fused.argmax(-1), loop.argmax(-1))


def test_a_single_token_gathers_its_experts_and_matches_the_loop():
    """1 token x top-4 of 16 experts: few enough copies for the gathered path."""
    model = DeepseekV3ForCausalLM(ModelConfig.from_dict(tiny_config())).eval()
    randomize_(model, seed=5)
    ids = torch.randint(0, 256, (1, 1), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        loop = model(ids)
        model.fuse_experts()
        gathered = model(ids)
    assert (gathered - loop).abs().max() < 1e-5


def test_experts_that_break_the_stride_alignment_stay_unfused():
    model = DeepseekV3ForCausalLM(ModelConfig.from_dict(tiny_config(moe_intermediate_size=6))).eval()
    model.fuse_experts()
    assert all(m.w13 is None for m in model.modules() if isinstance(m, MoE))
