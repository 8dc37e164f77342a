"""Client-side request budgets that a server's own count can never catch out.

A server counts a request when it arrives; the client only knows that it arrived
between sending and the answer. A limiter that stamps a slot when it is granted
lets a request slowed by a TLS handshake land inside the next window's burst and
draw a 429 (measured against both the HubSpot and the Airtable sandbox). Here a
slot is held while the request is in flight and counts for one window after its
answer, so the server never sees more than `max_requests` in any `window_s`,
whatever the network does. The cost is the round trip: the rate is
`max_requests / (window_s + RTT)`.

`penalize(seconds)` blocks the whole key (Airtable's 30 s penalty after a 429);
`adapt` takes a stricter limit announced by the server (HubSpot's headers).

Several instances serve every tenant (events are keyed by org and lead, so an
org's leads spread over all partitions), and each paces a tenant on its own: a
`Share` makes each spend only its part of a tenant's limit, the part of the
partitions it owns, rounded down. Two instances then send a base 2 requests/s
each, not 5 each.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from time import monotonic


class Share:
    """This instance's part of every tenant's limit: owned / all evaluation
    partitions (Consumer sets it on every assignment). 1 until assigned."""

    MIN = 0.05  # an instance with a sliver of the partitions still moves

    def __init__(self) -> None:
        self.value = 1.0

    def owned(self, mine: int, total: int) -> None:
        self.value = max(self.MIN, min(1.0, mine / total)) if mine and total else 1.0


class CompletionWindow:
    def __init__(self, max_requests: int, window_s: float, share: Share | None = None) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self.share = share or Share()
        self._done: deque[float] = deque()  # answer times, in order
        self._inflight = 0
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()  # FIFO: waiters take slots in arrival order
        self._released = asyncio.Event()

    def penalize(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, monotonic() + seconds)

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - monotonic())

    def adapt(self, max_requests: int, window_s: float) -> None:
        """Take the server's stated limit when it is stricter than ours."""
        if (
            max_requests > 0
            and window_s > 0
            and max_requests / window_s < self.max_requests / self.window_s
        ):
            self.max_requests, self.window_s = max_requests, window_s

    @property
    def allowed(self) -> int:
        """Requests per window for us: our share of the limit, rounded down, so that
        instances together never exceed it within any window (at least one)."""
        return max(1, int(self.max_requests * self.share.value))

    def _has_room(self, now: float) -> bool:
        while self._done and self._done[0] <= now - self.window_s:
            self._done.popleft()
        return len(self._done) + self._inflight < self.allowed

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one request: `async with window.slot(): await send(...)`."""
        async with self._lock:
            while (blocked := self.blocked_for) or not self._has_room(now := monotonic()):
                if blocked:
                    await asyncio.sleep(blocked)
                    continue
                # Wait for the oldest answer to age out, or for an in-flight one to finish.
                timeout = self._done[0] + self.window_s - now if self._done else None
                self._released.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), timeout)
            self._inflight += 1
        try:
            yield
        finally:  # also on errors and cancellation: the request may have landed
            self._inflight -= 1
            self._done.append(monotonic())
            self._released.set()


class WindowPool:
    """One window per key (an API token, an Airtable base), created on first use."""

    def __init__(self, max_requests: int, window_s: float, share: Share | None = None) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self.share = share
        self._windows: dict[str, CompletionWindow] = {}

    def get(self, key: str) -> CompletionWindow:
        window = self._windows.get(key)
        if window is None:
            window = CompletionWindow(self.max_requests, self.window_s, self.share)
            self._windows[key] = window
        return window
