"""`python -m model_runtime COMMAND ...`: a thin dispatcher to each command's own module.

Each module in COMMANDS provides `add_arguments(parser)` and `run(args) -> int` (exit status)
and imports its heavy dependencies inside `run`, so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "serve": ("model_runtime.server.cli", "serve a checkpoint over an OpenAI-compatible HTTP API"),
    "train": ("model_runtime.training.cli_train", "train or fine-tune a model (next-token + MTP loss)"),
    "build-corpus": ("model_runtime.training.cli_corpus", "train a BPE tokenizer and tokenise a code corpus"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_runtime", description="Native DeepSeek-V3 runtime")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        modules[name].add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
