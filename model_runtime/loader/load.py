"""`load_model` (contract 1): build the model on the meta device, then fill it tensor by tensor.

No full state dict is ever materialised: each tensor is read, dequantised if FP8, cast, and put in
place before the next is read, so peak memory stays near the final model size.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.loader.checkpoint import CheckpointError, CheckpointReader
from model_runtime.loader.fp8 import dequantize_block_fp8
from model_runtime.model import DeepseekV3ForCausalLM
from model_runtime.model.fp8_linear import FP8Linear

SCALE_SUFFIX = "_scale_inv"
FLOAT32_TENSORS = ("e_score_correction_bias",)  # routing bias stays float32 whatever the dtype


def _describe(names: set[str], limit: int = 20) -> str:
    shown = sorted(names)[:limit]
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    if attr in module._parameters:
        module._parameters[attr] = nn.Parameter(value, requires_grad=module._parameters[attr].requires_grad)
    else:
        module._buffers[attr] = value


def _keep_fp8(model: nn.Module, name: str, weight: torch.Tensor, scale: torch.Tensor, block: tuple[int, int],
              config: ModelConfig, device) -> bool:
    """Replace the nn.Linear owning `name` by an FP8Linear holding weight and scale as stored."""
    module_name, _, attr = name.rpartition(".")
    linear = model.get_submodule(module_name)
    if attr != "weight" or not isinstance(linear, nn.Linear):
        return False
    wanted = (-(-weight.shape[0] // block[0]), -(-weight.shape[1] // block[1]))
    if tuple(scale.shape) != wanted:
        raise CheckpointError(f"{name}: weight_scale_inv has shape {tuple(scale.shape)}, expected {wanted}")
    bias = None if linear.bias is None else linear.bias  # loaded into the new module if it comes later
    parent_name, _, child = module_name.rpartition(".")
    fp8 = FP8Linear(weight.to(device), scale.to(device), tuple(block), config.scale_fmt, bias)
    setattr(model.get_submodule(parent_name), child, fp8)
    return True


def load_model(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    config: ModelConfig | None = None,
    keep_fp8: bool = False,
) -> DeepseekV3ForCausalLM:
    """Load an HF-layout DeepSeek-V3/V2 checkpoint directory into our model.

    FP8 block weights are dequantised to `dtype`, or with keep_fp8 kept as stored (FP8Linear:
    ~1 byte per weight, dequantised per matmul).

    Raises CheckpointError naming any missing or unexpected tensor, or a shape mismatch.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    config = config or ModelConfig.from_pretrained(path)
    reader = CheckpointReader(path)
    with torch.device("meta"):
        model = DeepseekV3ForCausalLM(config)
    expected = dict(model.state_dict(keep_vars=True))
    stored = {k for k in reader.keys() if not k.endswith(SCALE_SUFFIX)}
    if config.tie_word_embeddings:
        stored.add("lm_head.weight")
    missing, unexpected = set(expected) - stored, stored - set(expected)
    problems = []
    if missing:
        problems.append(f"missing tensors: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_describe(unexpected)}")
    if problems:
        raise CheckpointError(f"{path} does not match its config.json ({'; '.join(problems)})")

    block = config.weight_block_size or (128, 128)
    scale_names = {k for k in reader.keys() if k.endswith(SCALE_SUFFIX)}
    for name in reader.keys():
        if name in scale_names:
            continue
        tensor = reader.get(name)
        if tensor.dtype == torch.float8_e4m3fn:
            scale_name = name + SCALE_SUFFIX
            if scale_name not in scale_names:
                raise CheckpointError(f"{name} is float8 but {scale_name} is missing")
            scale = reader.get(scale_name)
            if keep_fp8 and tuple(tensor.shape) == tuple(expected[name].shape) and \
                    _keep_fp8(model, name, tensor, scale, block, config, device):
                continue
            try:
                tensor = dequantize_block_fp8(tensor, scale, block, scale_fmt=config.scale_fmt)
            except ValueError as exc:
                raise CheckpointError(f"{name}: {exc}") from exc
        target = expected[name]
        if tuple(tensor.shape) != tuple(target.shape):
            raise CheckpointError(f"{name}: checkpoint shape {tuple(tensor.shape)} != model shape {tuple(target.shape)}")
        want = torch.float32 if name.endswith(FLOAT32_TENSORS) else dtype
        _set_tensor(model, name, tensor.to(device=device, dtype=want))
        del tensor
    reader.close()
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.model.rotary.to(device)
    model.eval()
    return model
