"""Where an answer has ended although the model goes on: a degenerate loop at its end.

Small or badly prompted models fall into loops (`#\\n#\\n#\\n...`, the same line again and
again) and would fill the whole answer budget with them. An answer whose end is one unit of 1-64
characters repeated back to back at least 8 times over at least 200 characters has ended: it is
cut after the first repetition of the unit.
"""
from __future__ import annotations

MAX_UNIT = 64
MIN_REPEATS = 8
MIN_SPAN = 200


def loop_start(text: str) -> int | None:
    """The length `text` keeps when its end is a degenerate loop (loop start + one unit), else None."""
    if len(text) < MIN_SPAN:
        return None
    for unit in range(1, MAX_UNIT + 1):
        tail = text[-unit:]
        start = len(text) - unit
        while start >= unit and text[start - unit : start] == tail:
            start -= unit
        repeats = (len(text) - start) // unit
        if repeats >= MIN_REPEATS and len(text) - start >= MIN_SPAN:
            return start + unit
    return None
