"""`python -m model_runtime train ...` and `python -m model_runtime build-corpus ...`."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from model_runtime.training.trainer import TrainConfig


def add_parsers(subparsers) -> None:
    corpus = subparsers.add_parser("build-corpus", help="train a BPE tokenizer and tokenise a code corpus")
    corpus.add_argument("--out", required=True, help="directory for tokenizer/ and corpus/")
    corpus.add_argument("--vocab-size", type=int, default=4096)
    corpus.add_argument("--heldout-fraction", type=float, default=0.03)
    corpus.add_argument("--source", default=None, help="root of .py files (default: this Python's standard library)")
    corpus.add_argument("--seed", type=int, default=0)
    corpus.set_defaults(handler=_build_corpus)

    train = subparsers.add_parser("train", help="train or fine-tune a model (next-token + MTP loss)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool",):
            train.add_argument(flag, action="store_true")
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            required = f.name in ("corpus", "out")
            train.add_argument(flag, type=kind, default=None if not required else argparse.SUPPRESS, required=required)
    train.set_defaults(handler=_train)


def _build_corpus(args) -> int:
    from model_runtime.training.recipe import build_stdlib_corpus

    meta = build_stdlib_corpus(args.out, args.vocab_size, args.heldout_fraction, args.seed, args.source)
    print(json.dumps({k: {"tokens": v["tokens"], "files": v["files"]} for k, v in meta["splits"].items()}))
    return 0


def _train(args) -> int:
    from model_runtime.training.trainer import Trainer

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    try:
        config = TrainConfig(**values)
        result = Trainer(config).train()
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items()}, indent=2))
    return 0
