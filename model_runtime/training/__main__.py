"""`python -m model_runtime.training {build-corpus,train}` (also reachable as `python -m model_runtime`)."""
import argparse
import sys

from model_runtime.training.cli import add_parsers


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m model_runtime.training")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
