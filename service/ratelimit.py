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

One instance owns a tenant at a time (its org's work partition, service/tenancy.py),
so each applies the tenant's whole limit. When a partition changes hands, the
new owner holds each tenant's window until the old owner's last requests have
aged out of it (`Handoffs`, `hold`): the server never sees the two together.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from time import monotonic, time

from service.tenancy import org_partition

SWEEP_AT = 1024  # windows a pool holds before the unused ones are dropped
UNUSED_S = 60.0  # a window unused for this long (and its length) may be dropped


class Handoffs:
    """Work partitions this instance took over, and when their previous owner let
    them go (epoch seconds; the Consumer sets them after each assignment). A
    tenant's window is held until then + its length: the previous owner may have
    spent the whole limit in its last window."""

    def __init__(self) -> None:
        self.partitions = 0  # of the work topic
        self._released: dict[int, float] = {}

    def took(self, released: dict[int, float], partitions: int, owned: set[int]) -> None:
        """After an assignment: `released` for the partitions it just took; holds of
        partitions it keeps still count (two rebalances within one window)."""
        kept = {p: at for p, at in self._released.items() if p in owned}
        self._released, self.partitions = kept | released, partitions

    def wait_s(self, org_id: str, window_s: float) -> float:
        """How long `org_id`'s requests must still wait for a window of `window_s`."""
        if not self._released or not self.partitions:
            return 0.0
        at = self._released.get(org_partition(org_id, self.partitions))
        return 0.0 if at is None else max(0.0, at + window_s - time())


class CompletionWindow:
    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        # Answer times, in order, and the waiters' wake-up: made on first use, as
        # most of 10,000 tenants' windows are idle (issue 23: 1.6 KB a window).
        self._done: deque[float] | None = None
        self._inflight = 0
        self._blocked_until = 0.0
        self._held_until = 0.0  # a handoff: no request before (monotonic), not a penalty
        self._lock = asyncio.Lock()  # FIFO: waiters take slots in arrival order
        self._released: asyncio.Event | None = None

    def penalize(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, monotonic() + seconds)

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - monotonic())

    def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` (a tenant taken over from another instance).
        Unlike a penalty, callers wait in `slot()`: nothing is refused."""
        self._held_until = max(self._held_until, monotonic() + seconds)

    def _waiting_s(self) -> float:
        return max(0.0, max(self._blocked_until, self._held_until) - monotonic())

    def adapt(self, max_requests: int, window_s: float) -> None:
        """Take the server's stated limit when it is stricter than ours."""
        if (
            max_requests > 0
            and window_s > 0
            and max_requests / window_s < self.max_requests / self.window_s
        ):
            self.max_requests, self.window_s = max_requests, window_s

    def _has_room(self, now: float) -> bool:
        done = self._done
        while done and done[0] <= now - self.window_s:
            done.popleft()
        return (len(done) if done else 0) + self._inflight < self.max_requests

    def unused(self, now: float) -> bool:
        """Nothing in flight, waiting or held, and no answer for UNUSED_S past its
        length: a new window would be the same (a caller that took it is long done)."""
        return (
            not self._inflight
            and not self._lock.locked()
            and self._waiting_s() == 0
            and not (self._done and self._done[-1] > now - self.window_s - UNUSED_S)
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for one request: `async with window.slot(): await send(...)`."""
        async with self._lock:
            while (blocked := self._waiting_s()) or not self._has_room(now := monotonic()):
                if blocked:
                    await asyncio.sleep(blocked)
                    continue
                # Wait for the oldest answer to age out, or for an in-flight one to finish.
                timeout = self._done[0] + self.window_s - now if self._done else None
                if self._released is None:
                    self._released = asyncio.Event()
                self._released.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), timeout)
            self._inflight += 1
        try:
            yield
        finally:  # also on errors and cancellation: the request may have landed
            self._inflight -= 1
            if self._done is None:
                self._done = deque()
            self._done.append(monotonic())
            if self._released is not None:
                self._released.set()


class WindowPool:
    """One window per key (an API token, an Airtable base), created on first use;
    unused ones are dropped once SWEEP_AT are held (keys come and go with orgs)."""

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._windows: dict[str, CompletionWindow] = {}
        self._sweep_at = SWEEP_AT

    def __len__(self) -> int:
        return len(self._windows)

    def get(self, key: str) -> CompletionWindow:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self._sweep_at:
                self._sweep()
            window = CompletionWindow(self.max_requests, self.window_s)
            self._windows[key] = window
        return window

    def _sweep(self) -> None:
        now = monotonic()
        self._windows = {k: w for k, w in self._windows.items() if not w.unused(now)}
        self._sweep_at = max(SWEEP_AT, 2 * len(self._windows))
