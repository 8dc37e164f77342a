"""A sliding-window request limiter, one per API token or base.

`acquire()` waits until a request fits in the window, so a destination spends
its budget without provoking 429s. `penalize(seconds)` blocks the whole key
(Airtable's 30 s penalty, a HubSpot window reset) without holding a lane hostage
beyond it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import monotonic


class SlidingWindowLimiter:
    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    def penalize(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, monotonic() + seconds)

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - monotonic())

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: waiters take slots in arrival order
            while True:
                now = monotonic()
                if now < self._blocked_until:
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.window_s - now)


class LimiterPool:
    """One limiter per key (token or base id), created on first use."""

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._limiters: dict[str, SlidingWindowLimiter] = {}

    def get(self, key: str) -> SlidingWindowLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = SlidingWindowLimiter(self.max_requests, self.window_s)
        return limiter
