"""Lanes: one FIFO queue and one worker per (org, destination).

A lead's events stay in order (one worker), batches fill up to the
destination's `max_batch_size` or until the linger expires, and a slow or
failing destination only ever slows its own lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from time import monotonic

from aiokafka import TopicPartition

from service.destinations.base import Destination
from service.metrics import Metrics
from service.pipeline.work import Delivery

log = logging.getLogger(__name__)
IDLE_LANE_S = 300.0  # an idle lane's task ends; the next event starts a new one


class Lane:
    def __init__(
        self,
        destination: Destination,
        deliver: Callable[[Lane, list[Delivery]], Awaitable[None]],
        *,
        capacity: int,
        linger_s: float,
    ) -> None:
        self.destination = destination
        self.deliver = deliver
        self.capacity = capacity
        self.linger_s = linger_s
        self.queue: deque[Delivery] = deque()
        self.sources: Counter[TopicPartition] = Counter()  # partitions with queued work here
        self.in_progress = 0
        self.unavailable_until = 0.0  # monotonic; set by a quota answer (QuotaExhausted)
        self._wakeup = asyncio.Event()
        self._filled = asyncio.Event()  # a full batch is waiting: stop lingering
        self._oldest_at = 0.0  # when the oldest queued delivery arrived
        self._blocking = False

    @property
    def full(self) -> bool:
        """Full at capacity, and stays so until half drained, so that holding back
        and releasing the partitions feeding it does not flap."""
        if len(self.queue) >= self.capacity:
            self._blocking = True
        elif len(self.queue) <= self.capacity // 2:
            self._blocking = False
        return self._blocking

    @property
    def pending(self) -> int:
        return len(self.queue) + self.in_progress

    @property
    def unavailable_for(self) -> float:
        return max(0.0, self.unavailable_until - monotonic())

    def submit(self, delivery: Delivery) -> None:
        if not self.queue:
            self._oldest_at = monotonic()
        self.queue.append(delivery)
        self.sources[delivery.job.tp] += 1
        self._wakeup.set()
        if len(self.queue) >= self.destination.max_batch_size:
            self._filled.set()

    async def run(self) -> None:
        """Deliver until the lane has been idle for IDLE_LANE_S."""
        while True:
            if not self.queue:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_LANE_S)
                except TimeoutError:
                    if not self.queue:
                        return
                continue
            await self._linger()
            batch = self._take()
            self.in_progress = len(batch)
            try:
                await self.deliver(self, batch)
            finally:
                self.in_progress = 0

    async def _linger(self) -> None:
        """Like a producer's linger.ms: the oldest delivery waits at most linger_s
        for its batch to fill; a full batch goes at once."""
        remaining = self._oldest_at + self.linger_s - monotonic()
        if len(self.queue) >= self.destination.max_batch_size or remaining <= 0:
            return
        self._filled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._filled.wait(), remaining)

    def _take(self) -> list[Delivery]:
        """Up to max_batch_size queued deliveries that share one config version."""
        first = self.queue[0].config
        batch: list[Delivery] = []
        while self.queue and len(batch) < self.destination.max_batch_size:
            if self.queue[0].config is not first:
                break
            delivery = self.queue.popleft()
            tp = delivery.job.tp
            self.sources[tp] -= 1
            if not self.sources[tp]:
                del self.sources[tp]
            batch.append(delivery)
        # A remainder smaller than a batch gets one more linger to fill up: taking
        # it at once splits what arrived during the last write into small batches.
        self._oldest_at = monotonic() if self.queue else 0.0
        return batch


class Lanes:
    def __init__(
        self,
        destinations: dict[str, Destination],
        deliver: Callable[[Lane, list[Delivery]], Awaitable[None]],
        metrics: Metrics,
        *,
        capacity: int,
        linger_s: float,
    ) -> None:
        self.destinations = destinations
        self.deliver = deliver
        self.metrics = metrics
        self.capacity = capacity
        self.linger_s = linger_s
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        for name in destinations:  # read at scrape time: no gauge update per event
            metrics.inflight.labels(name).set_function(functools.partial(self.pending_for, name))

    def submit(self, delivery: Delivery) -> None:
        key = (delivery.event.org_id, delivery.destination)
        lane = self._lanes.get(key)
        if lane is None:
            destination = self.destinations[delivery.destination]
            lane = self._lanes[key] = Lane(
                destination,
                self.deliver,
                capacity=self.capacity,
                linger_s=self.linger_s,
            )
            task = asyncio.create_task(lane.run(), name=f"lane:{key[1]}")
            task.add_done_callback(functools.partial(self._ended, key))
            self._tasks[key] = task
        lane.submit(delivery)

    def _ended(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        lane = self._lanes.pop(key, None)
        self._tasks.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("lane for %s stopped: %r", key[1], task.exception())
        if lane is not None and lane.queue:  # work arrived as it idled out: keep going
            for delivery in list(lane.queue):
                self.submit(delivery)

    def blocked_sources(self) -> set[TopicPartition]:
        """Partitions feeding a full lane: hold them back (backpressure), don't grow."""
        return {tp for lane in self._lanes.values() if lane.full for tp in lane.sources}

    @property
    def pending(self) -> int:
        return sum(lane.pending for lane in self._lanes.values())

    def depth(self, org_id: str, destination: str) -> int:
        """One lane's deliveries queued or being written (the status endpoint)."""
        lane = self._lanes.get((org_id, destination))
        return lane.pending if lane is not None else 0

    def pending_for(self, destination: str) -> int:
        """inflight_deliveries{destination}: queued or being written."""
        return sum(lane.pending for (_, name), lane in self._lanes.items() if name == destination)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
