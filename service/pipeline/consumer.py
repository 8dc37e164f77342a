"""The consume loop: fetch, route, hold or pause on backpressure, commit what is safe.

Partitions of both the evaluations and the retry topic are read by one group
member. Offsets are committed manually, only below the lowest unfinished
record (see offsets.py), every COMMIT_INTERVAL_MS, on revoke (rebalance.py)
and at stop.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from service.metrics import Metrics
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.rebalance import Rebalance
from service.pipeline.router import Router
from service.pipeline.table import TableReader
from service.settings import Settings

log = logging.getLogger(__name__)
HOLD_POLL_MS = 5  # how often a consumer with blocked partitions looks again
FETCH_MAX_WAIT_MS = 50
HOLD_MAX_S = 30.0  # well under the default max.poll.interval.ms (300 s)


class Consumer:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        router: Router,
        offsets: OffsetTracker,
        lanes: Lanes,
        marks: TableReader,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.router = router
        self.offsets = offsets
        self.lanes = lanes
        self.marks = marks
        self.kafka = AIOKafkaConsumer(
            **settings.kafka_client_args(),
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.session_timeout_ms // 4,
            max_partition_fetch_bytes=max(1_048_576, settings.max_event_bytes * 2),
            # aiokafka keeps one fetch in flight per broker. While blocked partitions
            # hold buffered records, that fetch asks only for quiet ones (the retry
            # topic) and the broker holds it for this long, delaying the refetch of
            # a drained partition; 500 ms by default.
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self.paused: set[TopicPartition] = set()  # by _hold, or held at assignment
        self._held_since: float | None = None  # monotonic; see _hold
        self.blocked: set[TopicPartition] = set()

    @property
    def assigned(self) -> bool:
        return bool(self.kafka.assignment())

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; the caller then calls `drain` and `stop`."""
        await self.kafka.start()
        self.kafka.subscribe(
            [self.settings.topic_evaluations, self.settings.topic_retry],
            listener=Rebalance(self, self.marks),
        )
        next_commit = monotonic()
        while not stopping.is_set():
            assignment = self.kafka.assignment()
            self.blocked = self._blocked(assignment)
            fetchable = assignment - self.blocked
            if fetchable or not assignment:
                await self._fetch(fetchable)
            else:
                await self._hold()
            if monotonic() >= next_commit:
                await self.commit()
                self._report_lag()
                next_commit = monotonic() + self.settings.commit_interval_ms / 1000

    def _blocked(self, assignment: set[TopicPartition]) -> set[TopicPartition]:
        """Partitions that must not feed more work: all of them at MAX_INFLIGHT,
        else those feeding a full lane (backpressure)."""
        if self.router.open_jobs >= self.settings.max_inflight:
            return set(assignment)
        return self.lanes.blocked_sources() & assignment

    async def _fetch(self, fetchable: set[TopicPartition]) -> None:
        """Records of the fetchable partitions only. Blocked ones are left out
        rather than paused: aiokafka keeps their prefetched records buffered (and
        fetches no more for them), where a pause would drop them, to be fetched
        and decoded again on resume."""
        self._held_since = None
        self._pause_exactly(set())
        # With some partitions blocked, come back soon to see whether they are free.
        await self._route(fetchable, HOLD_POLL_MS if self.blocked else 100)

    async def _route(self, fetchable: set[TopicPartition], timeout_ms: int) -> None:
        room = self.settings.max_inflight - self.router.open_jobs
        batches = await self.kafka.getmany(
            *fetchable, timeout_ms=timeout_ms, max_records=max(1, min(2_000, room))
        )
        for tp, records in batches.items():
            await self.router.on_records(tp, records)

    async def _hold(self) -> None:
        """Every partition is blocked: wait for room. Past HOLD_MAX_S, pause them
        all and poll, because the group coordinator evicts a member that stops
        polling (max.poll.interval.ms)."""
        now = monotonic()
        if self._held_since is None:
            self._held_since = now
            log.info("backpressure: every partition is blocked; holding fetches")
        if now - self._held_since < HOLD_MAX_S:
            await asyncio.sleep(HOLD_POLL_MS / 1000)
            return
        self._pause_exactly(self.blocked)
        # Returns nothing, unless a rebalance just added an unpaused partition:
        # whatever comes back is routed, never dropped.
        await self._route(set(), 100)

    def _pause_exactly(self, wanted: set[TopicPartition]) -> None:
        if wanted != self.paused:
            self.kafka.pause(*(wanted - self.paused))
            self.kafka.resume(*((self.paused - wanted) & self.kafka.assignment()))
            self.paused = wanted

    @property
    def backpressured(self) -> bool:
        """Some partitions are held back because their work is full."""
        return bool(self.blocked)

    async def commit(self, tps: set[TopicPartition] | None = None) -> None:
        points = self.offsets.commit_points(tps if tps is not None else self.kafka.assignment())
        if not points:
            return
        try:
            await self.kafka.commit(points)
            self.offsets.mark_committed(points)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: the next owner redelivers
            log.warning("commit failed (%s); the records will be redelivered", exc)

    def _report_lag(self) -> None:
        for tp in self.kafka.assignment():
            if tp.topic != self.settings.topic_evaluations:
                continue
            high = self.kafka.highwater(tp)
            part = self.offsets.partitions.get(tp)
            point = part.commit_point() if part else None
            if high is not None and point is not None:
                self.metrics.consumer_lag.labels(str(tp.partition)).set(max(0, high - point))

    async def drain(self, timeout_s: float, tps: set[TopicPartition] | None = None) -> bool:
        """Wait for in-flight records (of `tps`) to settle; True when all did."""
        parked = self.router.cancel_timers(tps)  # waiting retries stay in the retry topic
        deadline = monotonic() + timeout_s
        while self.offsets.pending(tps) > parked and monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return self.offsets.pending(tps) <= parked

    async def stop(self) -> None:
        await self.kafka.stop()
