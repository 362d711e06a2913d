"""Progress of a run as it happens: the harness reports events, a listener shows or stores them.

`RunProgress` counts (total known from the start, resumed samples included; generated, graded,
passed, completion tokens) and calls `changed()` on every event; subclasses show the counts.
`TqdmProgress` is the CLI's live bar: it appears before anything slow starts (loading data,
computing reference outputs) and refreshes every second, with the ETA, samples generated and
graded, tokens/s and the pass rate so far.
"""
from __future__ import annotations

import sys
import threading
import time

from tqdm import tqdm


class RunProgress:
    """Counters of one run; every method ends in `changed()`."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0  # graded samples, resumed ones included
        self.resumed = 0  # samples already on disk when the run started
        self.generated = 0  # completions received this session
        self.passed = 0  # of the samples graded this session
        self.tokens = 0  # completion tokens received this session
        self.stage = "starting"
        self.started = time.monotonic()

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(time.monotonic() - self.started, 1e-9)

    def start(self, total: int, done: int) -> None:
        """The run's size: `total` samples, `done` of them already on disk (resumed)."""
        self.total, self.done, self.resumed = total, done, done
        self.changed()

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.changed()

    def on_generated(self, tokens: int) -> None:
        self.generated += 1
        self.tokens += tokens
        self.changed()

    def on_graded(self, passed: bool) -> None:
        self.done += 1
        self.passed += bool(passed)
        self.changed()

    def changed(self) -> None:
        """Called after every event; the base class records only."""

    def close(self) -> None:
        """The run ended (or failed)."""


class TqdmProgress(RunProgress):
    """A tqdm bar on stderr over graded samples, refreshed every second."""

    def __init__(self, label: str, refresh_s: float = 1.0) -> None:
        super().__init__()
        self._bar = tqdm(total=None, desc=label, unit="sample", file=sys.stderr, dynamic_ncols=True,
                         mininterval=0.2, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refresher = threading.Thread(target=self._refresh, args=(refresh_s,), daemon=True,
                                           name="evals-progress")
        self.changed()
        self._refresher.start()

    def _refresh(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.changed()

    def changed(self) -> None:
        if not hasattr(self, "_bar"):
            return  # RunProgress.__init__ runs before the bar exists
        with self._lock:
            graded_now = max(self.done - self._bar.n, 0)
            if self._bar.total != self.total and self.total:
                self._bar.total = self.total
            if graded_now:
                self._bar.update(graded_now)
            graded = self.done - self.resumed
            rate = f"{100 * self.passed / graded:.0f}%" if graded else "-"
            self._bar.set_postfix_str(f"{self.stage}, generated {self.generated}, {self.tokens_per_s:.1f} tok/s, "
                                      f"passed {rate}", refresh=True)

    def close(self) -> None:
        self._stop.set()
        self._refresher.join(timeout=2)
        self.changed()
        self._bar.close()
