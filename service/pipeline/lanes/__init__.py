"""All lanes: created on demand, restarted if their worker ever dies.

A lane's worker is not supposed to raise (the deliverer turns every error into
an outcome), but if it does, the lane is restarted at once with what it was
writing back at the front of its queue: no delivery is lost, and the warning
says which destination and why.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from time import monotonic, time

from aiokafka import TopicPartition

from service.destinations.base import Destination
from service.metrics import Metrics
from service.pipeline.circuit import Circuit, Circuits
from service.pipeline.lanes.lane import IDLE_LANE_S, Defer, Deliver, Lane, Learned
from service.pipeline.work import Delivery

log = logging.getLogger(__name__)
ABANDON_WAIT_S = 2.0  # for cancelled writes to unwind (their batches' others are deferred)
Key = tuple[str, str]  # (org id, destination)


class Lanes:
    def __init__(
        self,
        destinations: dict[str, Destination],
        circuits: Circuits,
        deliver: Deliver,
        defer: Defer,
        metrics: Metrics,
        *,
        capacity: int,
        linger_s: float,
    ) -> None:
        self.destinations = destinations
        self.circuits = circuits
        self._lane = functools.partial(
            Lane,
            circuit=self._circuit,
            deliver=deliver,
            defer=defer,
            capacity=capacity,
            linger_s=linger_s,
        )
        self._lanes: dict[Key, Lane] = {}  # the lanes with work, or just out of it
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        # An idle lane goes with its worker: 30,000 idle lanes must fit in a pod (issue
        # 23). What it learned stays for IDLE_LANE_S: (monotonic when it idled, learned).
        self._idle: dict[Key, tuple[float, Learned]] = {}
        self._sweep_at = monotonic() + IDLE_LANE_S
        self.restarts = 0
        for name in destinations:  # read at scrape time: no gauge update per event
            metrics.inflight.labels(name).set_function(functools.partial(self.pending_for, name))

    def _circuit(self, delivery: Delivery) -> Circuit:
        return self.circuits.get(delivery.destination, delivery.config.integration.credentials_ref)

    def offer(self, delivery: Delivery) -> float | None:
        """Into the lane's window (None), or the epoch time to defer it to."""
        key = (delivery.event.org_id, delivery.destination)
        lane = self._lanes.get(key)
        if lane is None:
            self._sweep()
            lane = self._lanes[key] = self._lane(self.destinations[delivery.destination])
            if (idle := self._idle.pop(key, None)) is not None:
                lane.recall(idle[1])
        due = lane.offer(delivery)
        if key not in self._tasks:  # a worker while there is work; it ends at once if
            self._start(key, lane)  # none was taken, leaving what the lane learned
        return due

    def _start(self, key: Key, lane: Lane) -> None:
        task = asyncio.create_task(lane.run(), name=f"lane:{key[1]}")
        task.add_done_callback(functools.partial(self._ended, key, lane))
        self._tasks[key] = task

    def _ended(self, key: Key, lane: Lane, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.restarts += 1
            log.warning("lane %s of org %s crashed (%r); restarted", key[1], key[0], error)
            lane.requeue_in_flight()
        if error is not None or lane.queue:  # work arrived as it ended: keep going
            self._start(key, lane)
            return
        self._lanes.pop(key, None)
        self._tasks.pop(key, None)
        self._idle[key] = (monotonic(), lane.learned())
        self._sweep()

    def _sweep(self) -> None:
        """Forget what lanes idle for IDLE_LANE_S learned, unless they are on hold or
        have deferred work still to come back; at most once per IDLE_LANE_S / 4."""
        now = monotonic()
        if now < self._sweep_at:
            return
        self._sweep_at, epoch = now + IDLE_LANE_S / 4, time()
        self._idle = {
            key: (since, learned)
            for key, (since, learned) in self._idle.items()
            if now - since < IDLE_LANE_S or max(learned[1:]) > epoch
        }

    def drop(self, tps: set[TopicPartition]) -> int:
        """Forget everything queued from `tps` (revoked): never written here, and
        left uncommitted for the partitions' next owner."""
        return sum(lane.drop(lambda d: d.job.tp not in tps) for lane in self._lanes.values())

    async def drain(self, tps: set[TopicPartition], timeout_s: float) -> tuple[int, bool]:
        """Revoke or stop: drop what is queued from `tps`, let in-flight writes
        finish within `timeout_s`, then abandon the rest. (dropped, finished)"""
        dropped = self.drop(tps)
        finished = await self._settled(tps, timeout_s)
        if not finished:  # one owner at a time: cancel what outlasted the drain
            log.warning("abandoning %d writes still in flight", self.abandon(tps))
            await self._settled(tps, ABANDON_WAIT_S)
        return dropped, finished

    async def _settled(self, tps: set[TopicPartition], timeout_s: float) -> bool:
        deadline = monotonic() + timeout_s
        while self.in_flight_from(tps) and monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return not self.in_flight_from(tps)

    def abandon(self, tps: set[TopicPartition]) -> int:
        """Revoked writes that outlasted the drain: cancel the CRM calls carrying
        them, so the partitions' next owner is the only writer. Their deliveries are
        not settled here (the next owner redelivers them); the same batch's others
        are deferred (deliver.py)."""
        abandoned = 0
        for lane in self._lanes.values():
            revoked = [d for d in lane.in_flight if d.job.tp in tps]
            for delivery in revoked:
                delivery.job.revoked = True
            if revoked and lane.writing is not None:
                lane.writing.cancel()
            abandoned += len(revoked)
        return abandoned

    def in_flight_from(self, tps: set[TopicPartition]) -> int:
        return sum(1 for lane in self._lanes.values() for d in lane.in_flight if d.job.tp in tps)

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
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
