"""A token bucket per provider: at most ``rate`` messages per second, bursts up to ``capacity``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate_per_second: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second}")
        self.rate = float(rate_per_second)
        self.capacity = float(capacity if capacity is not None else rate_per_second)
        if self.capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        remaining = float(n)
        while remaining > 0:
            take = min(remaining, self.capacity)
            with self._lock:
                self._refill()
                if self._tokens >= take:
                    self._tokens -= take
                    remaining -= take
                    continue
                wait = (take - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait
        self.waited_seconds += waited
        return waited
