"""``RateLimiter``: paces sends to a number per second across every connection."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """Hands out evenly spaced send slots, ``per_second`` of them a second in total.
    Thread-safe; ``reserve()`` says how long the caller must wait for its slot, so
    threads sleep with ``time.sleep`` and tasks with ``asyncio.sleep``."""

    def __init__(self, per_second: float) -> None:
        if isinstance(per_second, bool) or not per_second > 0:
            raise ValueError(f"rate_limit must be positive, got {per_second!r}")
        self.interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        return slot - now

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)
