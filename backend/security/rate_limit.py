"""Token buckets: a sustained rate with room for a burst, one bucket per key (a device).

Kept in process memory. A device holds one Socket.IO connection, which lives in one server process, so
its bucket does too; a device that reconnects to another process starts with a full bucket there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: object, cost: int) -> float:
        """Spend `cost` tokens and return 0, or spend nothing and return the seconds until they are there.

        A cost above the burst can never be met at once; it waits for a full bucket and then takes it all.
        """
        cost = min(max(cost, 1), self.burst)
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
            if not wait:
                tokens -= cost
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # the least recently used
            return wait

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds a client is told (at least 1)."""
    return max(1, math.ceil(wait))
