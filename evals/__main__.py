"""`python -m evals ...`: see evals/cli.py."""
from evals.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
