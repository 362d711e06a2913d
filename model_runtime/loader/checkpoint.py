"""Reading an HF checkpoint directory's safetensors tensor by tensor.

safetensors memory-maps each file and `get_tensor` returns tensors backed by that (copy-on-write)
map: a tensor kept in its stored dtype costs no copy at load and its pages become resident as
they are used. Tensors that are converted (dtype change, FP8 dequantisation) are copied out, and
the handle is reopened after every `reopen_bytes` read so the map of what was already converted
can be released. Measured peaks are in docs/BENCHMARKS.md ("Checkpoint loading").
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

INDEX_NAME = "model.safetensors.index.json"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded, with the names of the offending tensors."""


class CheckpointReader:
    def __init__(self, path: str | Path, reopen_bytes: int = 64 << 20):
        self.path = Path(path)
        self.reopen_bytes = reopen_bytes
        self.weight_map = self._weight_map()
        self._handles: dict[str, object] = {}
        self._read_since_open: dict[str, int] = {}

    def _weight_map(self) -> dict[str, str]:
        """tensor name -> file name, from the index (sharded) or the single file's header."""
        index = self.path / INDEX_NAME
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as exc:
                raise CheckpointError(f"{index} is not a valid safetensors index: {exc}") from exc
            missing_files = sorted({f for f in weight_map.values() if not (self.path / f).is_file()})
            if missing_files:
                raise CheckpointError(f"shards named in {INDEX_NAME} are missing: {missing_files}")
            return dict(weight_map)
        files = sorted(self.path.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"no *.safetensors files in {self.path}")
        if len(files) > 1:
            raise CheckpointError(f"{len(files)} safetensors files in {self.path} but no {INDEX_NAME}")
        with safe_open(files[0], framework="pt") as f:
            return {name: files[0].name for name in f.keys()}

    def keys(self) -> list[str]:
        return list(self.weight_map)

    def get(self, name: str) -> torch.Tensor:
        file = self.weight_map[name]
        handle = self._handles.get(file)
        if handle is None or self._read_since_open[file] >= self.reopen_bytes:
            handle = self._handles[file] = safe_open(self.path / file, framework="pt")
            self._read_since_open[file] = 0
        tensor = handle.get_tensor(name)
        self._read_since_open[file] += tensor.numel() * tensor.element_size()
        return tensor

    def close(self) -> None:
        self._handles.clear()
