"""Stage 2's consume loop: fetch, route, hold tier partitions until due, commit what is safe.

One group member reads the work topic (evaluations keyed by org, layout.py) and
every delay tier. The range assignor gives it the same partition numbers of
each, so an org's events, its delayed work and its watermarks are all handled
by one instance, which applies the org's whole CRM limits. Offsets are committed
manually, only below the lowest unfinished record (offsets.py), every
COMMIT_INTERVAL_MS, on revoke (rebalance.py) and at stop. A partition handed
back leaves a `released` time in its changelog; the next owner holds its
tenants' rate windows from it (handoff.py).
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic, time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from service.metrics import Metrics
from service.pipeline.handoff import released_at, released_records
from service.pipeline.lanes import Lanes
from service.pipeline.legacy import LegacyMarks
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.rebalance import REVOKE_DRAIN_MAX_S, Rebalance
from service.pipeline.restore import Restorer
from service.pipeline.router import Router
from service.pipeline.tiers import TierGate
from service.ratelimit import Handoffs
from service.settings import Settings

log = logging.getLogger(__name__)
ROOM_POLL_MS = 5  # how often a consumer at MAX_INFLIGHT looks again
FETCH_MAX_WAIT_MS = 50
FETCH_PARTITION_BYTES = 256 * 1024
ROOM_WAIT_MAX_S = 30.0  # well under the default max.poll.interval.ms (300 s)
# One partition (a handful of tenants) may hold at most this share of MAX_INFLIGHT
# and MAX_INFLIGHT_BYTES: a big org's burst leaves room for the other partitions'
# tenants to be fetched, instead of holding every fetch until the burst settles.
PARTITION_SHARE = 0.75


class Consumer:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        router: Router,
        offsets: OffsetTracker,
        lanes: Lanes,
        outbox: Outbox,
        restorer: Restorer,
        handoffs: Handoffs,
        legacy: LegacyMarks | None = None,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_work
        self.handoffs = handoffs  # tenants taken over, set on each assignment
        self.legacy = legacy  # an upgraded deployment's watermarks, imported once
        self.restorer = restorer
        self._owned: set[int] = set()  # work partitions before the latest assignment
        self._acquired: set[int] = set()  # and those it added
        self.metrics = metrics
        self.router = router
        self.gate: TierGate = router.gate
        self.offsets = offsets
        self.lanes = lanes
        self.outbox = outbox
        self.kafka = AIOKafkaConsumer(
            **settings.kafka_client_args(),
            group_id=settings.consumer_group,
            group_instance_id=settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.session_timeout_ms // 4,
            # How long the coordinator waits for members to rejoin. aiokafka's default
            # (the session timeout, 10 s) is shorter than the revoke drain: a member
            # still draining would be dropped from the generation and its commit
            # refused, so the next owner would redo what it had just finished.
            rebalance_timeout_ms=max(
                settings.session_timeout_ms, int((REVOKE_DRAIN_MAX_S + 10) * 1000)
            ),
            # Per partition and fetch: this consumer reads 7 topics' partitions (the
            # work topic and six tiers), and each buffers a fetch. A record larger
            # than this still comes back whole (brokers return at least one batch).
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
            # aiokafka keeps one fetch in flight per broker; a fetch that covers
            # only quiet partitions is held by the broker this long (500 ms default).
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self.paused: set[TopicPartition] = set()
        self._waiting_since: float | None = None  # monotonic; see _wait_for_room
        self.rebalance = Rebalance(
            self.kafka,
            self.topic,
            self.hand_back,
            self._took,
            self._restore,
            restorer.stores.close,
            metrics.restore_failures.inc,
        )

    @property
    def assigned(self) -> bool:
        return bool(self.kafka.assignment())

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; the caller then calls `hand_back` and `stop`."""
        await self.kafka.start()
        self.kafka.subscribe([self.topic, *self.gate.topics], listener=self.rebalance)
        next_commit = monotonic()
        while not stopping.is_set():
            assignment = self.kafka.assignment()
            await self.rebalance.retry_restore()
            if self.full() and assignment:
                await self._wait_for_room(assignment)
            else:
                self._waiting_since = None
                await self._fetch(assignment)
            if monotonic() >= next_commit:
                await self.commit()
                self._report_lag()
                next_commit = monotonic() + self.settings.commit_interval_ms / 1000

    def full(self) -> bool:
        """MAX_INFLIGHT records or MAX_INFLIGHT_BYTES of them consumed and not settled."""
        s = self.settings
        return (
            self.offsets.pending() >= s.max_inflight
            or self.offsets.open_bytes >= s.max_inflight_bytes
        )

    def crowded(self) -> set[TopicPartition]:
        """Partitions holding their whole share of the in-flight budget."""
        s, parts = self.settings, self.offsets.partitions
        records, size = PARTITION_SHARE * s.max_inflight, PARTITION_SHARE * s.max_inflight_bytes
        return {tp for tp, p in parts.items() if p.pending >= records or p.bytes >= size}

    async def _fetch(self, assignment: set[TopicPartition]) -> None:
        self.gate.released(time())
        paused = set(self.gate.paused_until) | self.rebalance.unrestored | self.crowded()
        self._pause_exactly(paused & assignment)
        await self._route(assignment - self.paused - self.rebalance.unrestored, 100)

    async def _route(self, fetchable: set[TopicPartition], timeout_ms: int) -> None:
        room = self.settings.max_inflight - self.offsets.pending()
        batches = await self.kafka.getmany(
            *fetchable, timeout_ms=timeout_ms, max_records=max(1, min(2_000, room))
        )
        now = time()
        for tp, records in batches.items():
            if self.gate.is_tier(tp.topic):
                records, seek_to = self.gate.due(tp, records, now)
                if seek_to is not None:  # the rest waits in Kafka, not here
                    self.kafka.seek(tp, seek_to)
                    self._pause_exactly(self.paused | {tp})
            if records:
                await self.router.on_records(tp, records)

    async def _wait_for_room(self, assignment: set[TopicPartition]) -> None:
        """MAX_INFLIGHT reached: fetch nothing until there is room. Past ROOM_WAIT_MAX_S,
        pause everything and poll, because the group coordinator evicts a member
        that stops polling (max.poll.interval.ms)."""
        now = monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            log.info("MAX_INFLIGHT reached: waiting for room: no fetch until deliveries settle")
        if now - self._waiting_since < ROOM_WAIT_MAX_S:
            await asyncio.sleep(ROOM_POLL_MS / 1000)
            return
        self._pause_exactly(assignment)
        # Returns nothing, unless a rebalance just added an unpaused partition:
        # whatever comes back is routed, never dropped.
        await self._route(set(), 100)

    def _pause_exactly(self, wanted: set[TopicPartition]) -> None:
        if wanted != self.paused:
            self.kafka.pause(*(wanted - self.paused))
            self.kafka.resume(*((self.paused - wanted) & self.kafka.assignment()))
            self.paused = wanted

    def _took(self, assigned: set[TopicPartition]) -> None:
        self.paused &= self.kafka.assignment()
        now = {tp.partition for tp in self.kafka.assignment() if tp.topic == self.topic}
        self._acquired, self._owned = now - self._owned, now
        self.metrics.partition_assigned(tp.partition for tp in assigned if tp.topic == self.topic)

    async def _restore(self, numbers: set[int]) -> None:
        """Before a newly assigned partition is processed: its store restored (and, once,
        an upgraded deployment's marks imported), and the time its previous owner
        let it go, so that its tenants' rate windows are held until then + a window."""
        await self.restorer.restore(numbers)
        total = len(self.kafka.partitions_for_topic(self.topic) or ())
        if self.legacy is not None:
            await self.legacy.import_into(numbers, total)
        released = {p: t for p in self._acquired if (t := released_at(self.restorer.stores, p))}
        self.handoffs.took(released, total, self._owned)

    async def hand_back(self, tps: set[TopicPartition], timeout_s: float) -> bool:
        """Revoke or stop: drop what is queued from `tps` (never written here, left
        uncommitted for the next owner), let in-flight writes finish within
        `timeout_s` (then cancel them: never written twice by two owners), wait for
        their records' acks, commit, forget the partitions."""
        deadline = monotonic() + timeout_s
        dropped, finished = await self.lanes.drain(tps, timeout_s)
        # Nothing more is written for these partitions: say when, for the next owner.
        numbers = {tp.partition for tp in tps if tp.topic == self.topic}
        await self.outbox.put(released_records(self.settings.topic_watermarks, numbers))
        try:
            await asyncio.wait_for(self.outbox.barrier(), max(0.1, deadline - monotonic()))
        except TimeoutError:
            finished = False
        await self.commit(tps)
        self.offsets.forget(tps)
        self.gate.forget(tps)
        self.metrics.partition_revoked(tp.partition for tp in tps if tp.topic == self.topic)
        log.info(
            "handed back %d partitions (%d queued deliveries dropped, in-flight finished: %s)",
            len(tps),
            dropped,
            finished,
        )
        return finished

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
        waiting = 0
        for tp in self.kafka.assignment():
            high = self.kafka.highwater(tp)
            part = self.offsets.partitions.get(tp)
            point = part.position if part else None
            if high is None or point is None:
                continue
            if tp.topic == self.topic:
                self.metrics.consumer_lag.labels(str(tp.partition)).set(max(0, high - point))
            else:
                waiting += max(0, high - point)
        self.metrics.retry_pending.set(waiting)

    async def stop(self) -> None:
        await self.kafka.stop()
