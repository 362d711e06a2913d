"""`python -m model_runtime build-corpus`: BPE tokenizer + memory-mapped corpus (default: the stdlib)."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="directory for tokenizer/ and corpus/")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--heldout-fraction", type=float, default=0.03)
    parser.add_argument("--source", default=None, help="root of .py files (default: this Python's standard library)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from model_runtime.training.recipe import build_stdlib_corpus

    try:
        meta = build_stdlib_corpus(args.out, args.vocab_size, args.heldout_fraction, args.seed, args.source)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: {"tokens": v["tokens"], "files": v["files"]} for k, v in meta["splits"].items()}))
    return 0
