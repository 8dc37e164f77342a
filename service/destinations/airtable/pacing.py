"""Per-base pacing that Airtable's arrival-time count can never catch out.

Airtable counts a request when it arrives; the client only knows that it arrived
between sending and the response. `service.ratelimit.SlidingWindowLimiter` stamps
a slot when it is granted, so a request slowed by a TLS handshake (tens of ms,
measured against the sandbox) can land inside the next window's burst and draw a
429 and a 30-second penalty. Here a slot is held while the request is in flight and
counts for one window after its response: the server never sees more than
`max_requests` in any `window_s`, whatever the network does. The cost is the round
trip: the rate is `max_requests / (window_s + RTT)`.

Same `penalize` / `blocked_for` as the shared limiter: a 429 blocks the whole base.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import monotonic


class BasePacer:
    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._finished: deque[float] = deque()  # response times, in order
        self._in_flight = 0
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()  # FIFO: waiters take slots in arrival order
        self._finishing = asyncio.Event()

    def penalize(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, monotonic() + seconds)

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - monotonic())

    async def _acquire(self) -> None:
        async with self._lock:
            while True:
                now = monotonic()
                if now < self._blocked_until:
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                while self._finished and self._finished[0] <= now - self.window_s:
                    self._finished.popleft()
                if self._in_flight + len(self._finished) < self.max_requests:
                    self._in_flight += 1
                    return
                if self._finished:  # the oldest finished request leaves the window first
                    await asyncio.sleep(self._finished[0] + self.window_s - now)
                else:  # every slot is in flight: a response starts the clock
                    self._finishing.clear()
                    await self._finishing.wait()

    def _release(self) -> None:
        self._in_flight -= 1
        self._finished.append(monotonic())
        self._finishing.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one request: `async with pacer.slot(): await send(...)`."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()  # also on errors and cancellation: the request may have landed


class PacerPool:
    """One pacer per base id, created on first use."""

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._pacers: dict[str, BasePacer] = {}

    def get(self, key: str) -> BasePacer:
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = self._pacers[key] = BasePacer(self.max_requests, self.window_s)
        return pacer
