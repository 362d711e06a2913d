"""`python -m model_runtime train`: every TrainConfig field is a flag (`--seq-len`, `--balance`, ...)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from model_runtime.training.trainer import TrainConfig

_TYPES = {"int": int, "float": float}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type).split(" ")[0]
        if kind == "bool":
            parser.add_argument(flag, action="store_true")
        elif f.name in ("corpus", "out"):
            parser.add_argument(flag, required=True)
        else:
            parser.add_argument(flag, type=_TYPES.get(kind, str), default=None, help=f"default: {f.default}")


def run(args: argparse.Namespace) -> int:
    from model_runtime.training.trainer import Trainer

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    try:
        result = Trainer(TrainConfig(**values)).train()
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
