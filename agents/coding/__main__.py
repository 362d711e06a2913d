"""``python -m agents.coding``: see agents/coding/cli.py."""
import sys

from agents.coding.cli import main

sys.exit(main())
