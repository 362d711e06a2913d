"""Writing a checkpoint in the HF layout our loader, transformers and vLLM read.

Optionally FP8: 2-D projection weights become float8_e4m3fn plus a float32 `weight_scale_inv`
per 128x128 block, as in DeepSeek-V3's release (power-of-two scales when the config's
`scale_fmt` is "ue8m0", as in V3.1's); everything else stays in `dtype`.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from model_runtime.config import ModelConfig
from model_runtime.loader.checkpoint import INDEX_NAME
from model_runtime.loader.fp8 import quantize_block_fp8

FP8_SKIP = ("mlp.gate.weight", "eh_proj.weight")


def _is_fp8_target(name: str, tensor: torch.Tensor) -> bool:
    return tensor.dim() == 2 and name.endswith("_proj.weight") and not name.endswith(FP8_SKIP)


def save_checkpoint(
    model: nn.Module,
    config: ModelConfig,
    path: str | Path,
    dtype: torch.dtype = torch.bfloat16,
    fp8: bool = False,
    max_shard_bytes: int | None = None,
) -> Path:
    """Write config.json and safetensors (sharded with an index when over max_shard_bytes)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    block = config.weight_block_size or (128, 128)
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if fp8 and _is_fp8_target(name, tensor):
            tensors[name], tensors[name + "_scale_inv"] = quantize_block_fp8(tensor, block, config.scale_fmt)
        elif name.endswith("e_score_correction_bias"):
            tensors[name] = tensor.float().contiguous()
        else:
            tensors[name] = tensor.to(dtype).contiguous()
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if max_shard_bytes and size and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    # quantization_config describes the tensors written here, not those the model was loaded from
    saved_config = replace(config, weight_block_size=block if fp8 else None).to_dict()
    saved_config["torch_dtype"] = str(dtype).removeprefix("torch.")
    (path / "config.json").write_text(json.dumps(saved_config, indent=2))
    if len(shards) == 1:
        save_file(shards[0], str(path / "model.safetensors"), metadata={"format": "pt"})
        return path
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path / file), metadata={"format": "pt"})
        weight_map.update({name: file for name in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (path / INDEX_NAME).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return path
