"""The recipe for the bundled model's data: a BPE tokenizer and a corpus from the Python standard
library on this machine (its .py files, test suites included; site-packages and IDLE excluded)."""
from __future__ import annotations

import sysconfig
from pathlib import Path

from model_runtime.tokenizer import load_tokenizer
from model_runtime.training.bpe import train_bpe
from model_runtime.training.corpus import build_corpus, source_files

EXCLUDED_PARTS = {"idlelib", "site-packages", "lib2to3", "ensurepip", "turtledemo", "__pycache__"}


def stdlib_python_files(root: Path | None = None) -> list[Path]:
    root = Path(root or sysconfig.get_paths()["stdlib"])
    return [p for p in source_files([root], suffixes=(".py",)) if not EXCLUDED_PARTS & set(p.relative_to(root).parts)]


def build_stdlib_corpus(out_dir: str | Path, vocab_size: int = 8192, heldout_fraction: float = 0.03, seed: int = 0, root: Path | None = None) -> dict:
    out = Path(out_dir)
    files = stdlib_python_files(root)
    if not files:
        raise FileNotFoundError("no Python standard library sources found")
    texts = (p.read_text(encoding="utf-8", errors="replace") for p in files)
    tokenizer_dir = train_bpe(texts, vocab_size, out / "tokenizer")
    tokenizer = load_tokenizer(tokenizer_dir)
    return build_corpus(files, tokenizer, out / "corpus", heldout_fraction, seed)
