"""A tokenised, memory-mapped corpus: one uint16/uint32 token stream per split, files wrapped in
BOS ... EOS, held-out split by file (never by position inside a file)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from model_runtime.tokenizer import DeepSeekTokenizer

TEXT_SUFFIXES = (".py", ".md", ".txt", ".rst")


def source_files(roots: list[Path], suffixes=TEXT_SUFFIXES, max_bytes: int = 512_000) -> list[Path]:
    """Readable text/code files under the roots, sorted (so the split is reproducible)."""
    files = []
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix in suffixes and path.is_file() and 0 < path.stat().st_size <= max_bytes:
                if "site-packages" not in path.parts:
                    files.append(path)
    return files


def build_corpus(files: list[Path], tokenizer: DeepSeekTokenizer, out_dir: str | Path, heldout_fraction: float = 0.02, seed: int = 0) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = list(files)
    random.Random(seed).shuffle(files)
    n_heldout = max(1, int(len(files) * heldout_fraction))
    splits = {"heldout": files[:n_heldout], "train": files[n_heldout:]}
    dtype = np.uint16 if tokenizer.vocab_size < 65536 else np.uint32
    meta = {"dtype": np.dtype(dtype).name, "vocab_size": tokenizer.vocab_size, "splits": {}}
    for split, paths in splits.items():
        chunks, used = [], []
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            ids = [tokenizer.bos_id] + tokenizer.encode(text) + [tokenizer.eos_id]
            chunks.append(np.asarray(ids, dtype=dtype))
            used.append(str(path))
        tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
        tokens.tofile(out / f"{split}.bin")
        meta["splits"][split] = {"tokens": int(tokens.size), "files": len(used), "file_list": used}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


class TokenStream:
    """Random or sequential windows of `length` tokens from one split's memory map."""

    def __init__(self, corpus_dir: str | Path, split: str):
        corpus = Path(corpus_dir)
        meta_path = corpus / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: build the corpus first")
        meta = json.loads(meta_path.read_text())
        self.tokens = np.memmap(corpus / f"{split}.bin", dtype=meta["dtype"], mode="r")
        self.vocab_size = meta["vocab_size"]

    def __len__(self) -> int:
        return int(self.tokens.size)

    def random_batch(self, rng: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
        starts = rng.integers(0, len(self) - length, size=batch_size)
        return np.stack([self.tokens[s : s + length] for s in starts]).astype(np.int64)

    def sequential_batches(self, batch_size: int, length: int, max_batches: int):
        step = length
        starts = list(range(0, len(self) - length, step))[: batch_size * max_batches]
        for i in range(0, len(starts), batch_size):
            yield np.stack([self.tokens[s : s + length] for s in starts[i : i + batch_size]]).astype(np.int64)
