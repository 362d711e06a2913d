import pytest
import torch

from model_runtime import DeepseekV3ForCausalLM, ModelConfig
from model_runtime.loader.save import save_checkpoint
from tests.model_runtime.checkpoints import randomize_, tiny_config


@pytest.fixture(scope="package")
def tiny_checkpoint(tmp_path_factory):
    """A random tiny V3 model with one MTP layer (vocab 256: ids valid in the real tokenizer)."""
    config = ModelConfig.from_dict(tiny_config(num_nextn_predict_layers=1))
    model = DeepseekV3ForCausalLM(config).eval()
    randomize_(model, seed=0)
    path = tmp_path_factory.mktemp("tiny")
    save_checkpoint(model, config, path, dtype=torch.float32)
    return path, model


def greedy_reference(model, prompt: list[int], n: int) -> list[int]:
    """Greedy continuation by full recomputation (no cache): the ground truth."""
    seq = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(n):
            seq = torch.cat([seq, model(seq)[:, -1:].argmax(-1)], dim=1)
    return seq[0, len(prompt):].tolist()
