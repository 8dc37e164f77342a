"""Lanes: one small in-memory window and one worker per (org, destination).

A lane holds only what its destination can write in about WINDOW_S seconds, at
the rate it has been measured to write (at least two batches). Beyond that, and
while its destination is on hold (quota, a long rate limit) or its circuit is
open, a delivery is deferred: written to a delay tier (tiers.py) without
spending an attempt, due when the lane is expected to have drained what is
ahead of it. So a slow or failing destination keeps its backlog in Kafka, and
never holds back the org's other destinations or other orgs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from time import monotonic, time

from service.destinations.base import Destination
from service.pipeline.circuit import Admit, Circuit
from service.pipeline.lanes.linger import linger
from service.pipeline.work import Delivery

IDLE_LANE_S = 300.0  # what an idle lane learned is forgotten after this (its measured rate)
WINDOW_S = 5.0
RATE_WEIGHT = 0.3  # of each new measurement in the moving average

Learned = tuple[float, float, float]  # (rate, hold_until, horizon): see Lane.learned
HORIZON_MAX_S = 3600.0  # deferred work comes back within this, whatever the rate says
# (lane, batch, probe) -> whether the destination answered at once (measure on those)
Deliver = Callable[["Lane", list[Delivery], bool], Awaitable[bool]]
Defer = Callable[[list[tuple[Delivery, float]]], Awaitable[None]]  # (delivery, due epoch s)


class Lane:
    # An idle lane has no task and no events: 30,000 idle lanes must fit in a pod (issue 23).
    __slots__ = (
        "_filled",
        "_oldest_at",
        "capacity",
        "circuit_of",
        "defer",
        "deliver",
        "destination",
        "hold_until",
        "horizon",
        "in_flight",
        "linger_s",
        "queue",
        "rate",
        "writing",
    )

    def __init__(
        self,
        destination: Destination,
        circuit: Callable[[Delivery], Circuit],
        deliver: Deliver,
        defer: Defer,
        *,
        capacity: int,
        linger_s: float,
    ) -> None:
        self.destination = destination
        self.circuit_of = circuit
        self.deliver = deliver
        self.defer = defer
        self.capacity = capacity
        self.linger_s = linger_s
        self.queue: deque[Delivery] = deque()
        self.in_flight: list[Delivery] = []
        self.writing: asyncio.Task[object] | None = None  # the CRM call, cancellable on revoke
        self.rate = destination.max_batch_size * 10.0  # records/s, until measured
        self.hold_until = 0.0  # epoch s: no writes before (quota, a long rate limit)
        self.horizon = 0.0  # epoch s: when the work deferred so far should be drained
        self._filled: asyncio.Event | None = None  # while lingering: a full batch is waiting
        self._oldest_at = 0.0

    @property
    def window(self) -> int:
        floor = 2 * self.destination.max_batch_size
        return min(self.capacity, max(floor, int(self.rate * WINDOW_S)))

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.in_flight)

    def offer(self, delivery: Delivery) -> float | None:
        """Take `delivery` into the window (None), or say when it should come back."""
        wait = max(0.0, self.hold_until - time())
        circuit = self.circuit_of(delivery)
        # An open circuit defers everything but the one delivery that an empty lane
        # may carry as the next probe.
        closed = not circuit.is_open or not (self.queue or circuit.probing or circuit.wait_s())
        if closed and wait == 0 and len(self.queue) < self.window:
            self._append(delivery)
            return None
        return self.due(max(wait, circuit.wait_s()))

    def due(self, wait_s: float = 0.0) -> float:
        """When one more deferred delivery should come back: after what is queued and
        deferred ahead of it, at the measured rate, and not before `wait_s`."""
        now = time()
        start = max(self.horizon, now + wait_s, now + len(self.queue) / self.rate)
        start = min(start, now + max(wait_s, HORIZON_MAX_S))  # a slow spell must not
        self.horizon = start + 1 / self.rate  # spread the backlog over many hours
        return start

    def _append(self, delivery: Delivery) -> None:
        if not self.queue:
            self._oldest_at = monotonic()
        self.queue.append(delivery)
        if self._filled is not None and len(self.queue) >= self.destination.max_batch_size:
            self._filled.set()

    def learned(self) -> Learned:
        """What the next lane of its (org, destination) starts from, once this one idles."""
        return self.rate, self.hold_until, self.horizon

    def recall(self, learned: Learned) -> None:
        self.rate, self.hold_until, self.horizon = learned

    def requeue_in_flight(self) -> None:
        """After a crash of the worker: what it was writing goes back to the front."""
        self.queue.extendleft(reversed(self.in_flight))
        self.in_flight = []

    def drop(self, keep: Callable[[Delivery], bool]) -> int:
        """Forget queued deliveries that `keep` rejects (their partition was revoked)."""
        before = len(self.queue)
        self.queue = deque(d for d in self.queue if keep(d))
        return before - len(self.queue)

    async def run(self) -> None:
        """Deliver until nothing is queued; the next offer starts the worker again."""
        while self.queue:
            circuit = self.circuit_of(self.queue[0])
            admit = Admit.DEFER if self.hold_until > time() else circuit.admit()
            if admit is Admit.DEFER:
                await self._defer_queue(max(self.hold_until - time(), circuit.wait_s()))
                continue
            if admit is Admit.SEND:
                await self._linger()
            self.in_flight = self._take(1 if admit is Admit.PROBE else None)
            started = monotonic()
            if await self.deliver(self, self.in_flight, admit is Admit.PROBE):
                self._measure(monotonic() - started)  # not on waits or failures
            self.in_flight = []

    async def _defer_queue(self, wait_s: float) -> None:
        batch, self.queue = list(self.queue), deque()
        await self.defer([(d, self.due(wait_s)) for d in batch])

    def _measure(self, elapsed_s: float) -> None:
        """Writing capacity in records/s, as if every batch were full: most CRM
        calls take about as long for one record as for a full batch. Measured on
        writes the destination answered at once only: timeouts and Retry-After
        waits would make a destination that is back look slow for hours."""
        sample = self.destination.max_batch_size / max(elapsed_s, 0.001)
        self.rate += RATE_WEIGHT * (sample - self.rate)

    async def _linger(self) -> None:
        """Like a producer's linger.ms, longer while a burst lasts (linger.py)."""
        full = self.destination.max_batch_size
        self._filled = asyncio.Event()
        try:
            await linger(
                lambda: len(self.queue), full, self._oldest_at, self.linger_s, self._filled
            )
        finally:
            self._filled = None

    def _take(self, limit: int | None) -> list[Delivery]:
        """Up to max_batch_size queued deliveries that share one config version."""
        size = limit or self.destination.max_batch_size
        first = self.queue[0].config
        batch: list[Delivery] = []
        while self.queue and len(batch) < size and self.queue[0].config is first:
            batch.append(self.queue.popleft())
        # A remainder smaller than a batch gets one more linger to fill up: taking
        # it at once splits what arrived during the last write into small batches.
        self._oldest_at = monotonic() if self.queue else 0.0
        return batch
