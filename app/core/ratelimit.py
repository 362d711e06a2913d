"""Per-key request rate limit: a sliding one-minute window kept in process memory.

One app process holds the counts; a multi-replica deployment would move this to a shared
store (see docs/DEPLOY.md).
"""
import threading
import time
from collections import deque


class RateLimiter:
    """Allow at most `per_minute` hits per key in any 60-second window."""

    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Record a hit; return None if allowed, else the seconds until the next one is allowed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(hits[0] + self.window_s - now, 0.0)
            hits.append(now)
            return None
