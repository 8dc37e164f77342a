"""Stage 1: the evaluations, keyed `org:lead`, re-keyed by org into the work topic.

Like Kafka Streams' repartition topic before a groupBy. Each valid event's
original bytes and headers go to TOPIC_WORK with the key `org_id`, at
partition murmur2(org_id) % N (service/tenancy.py), so all of a tenant's work is
in one partition and one instance (stage 2) writes for it at a time. Invalid
events go to the DLQ here, with the contract's headers naming the evaluations
record. Stage 1 reads in KAFKA_CONSUMER_GROUP (earlier versions' committed
offsets stay valid) and commits an offset only once the broker acknowledged
what its records produced (the outbox's callbacks). The outbox keeps a
partition's records in order, so each lead's events stay in order.

When an upgraded deployment left retries in the old tiers, they are read here
too and moved to the by-org tiers (legacy.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from time import monotonic

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from service.errors import InvalidEvent
from service.metrics import Metrics
from service.pipeline import records
from service.pipeline.decode import decode_event
from service.pipeline.layout import STAGE1_CLIENT_ID, Layout
from service.pipeline.legacy import tier_record
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.rebalance import REVOKE_DRAIN_MAX_S
from service.pipeline.records import Outgoing
from service.settings import Settings
from service.tenancy import org_partition

log = logging.getLogger(__name__)
FETCH_MAX_WAIT_MS = 50
# Records forwarded per loop turn: each is decoded without yielding to the event
# loop (~40 µs), so a smaller turn lets the delivery stage's lanes run between.
STAGE1_FETCH_RECORDS = 500


class Forward:
    """Consumed records -> the records they produce (pure but for the metrics)."""

    def __init__(self, settings: Settings, metrics: Metrics, work_partitions: int) -> None:
        self.layout = Layout.of(settings)
        self.max_bytes = settings.max_event_bytes
        self.dlq = settings.topic_dlq
        self.metrics = metrics
        self.partitions = work_partitions

    def __call__(self, record: ConsumerRecord) -> Outgoing:
        """Never raises: whatever one record does, it is dead-lettered, and the
        partition moves on (an exception here would stop stage 1 for every tenant)."""
        try:
            return self._forward(record)
        except Exception as exc:
            log.exception("cannot forward %s[%d]@%d", record.topic, record.partition, record.offset)
            self.metrics.internal_errors.labels("repartition").inc()
            error = InvalidEvent("unprocessable_event", repr(exc)[:500], "validate")
            self._invalid(record, error)
            return records.dead_letter(self.dlq, record, error)

    def _forward(self, record: ConsumerRecord) -> Outgoing:
        if record.topic != self.layout.evaluations:
            moved, error = tier_record(record, self.layout.tiers, self.partitions, self.dlq)
            if error is not None:
                self._invalid(record, error)
            return moved
        try:
            event = decode_event(record.value, self.max_bytes)
        except InvalidEvent as exc:
            self.metrics.events_consumed.inc()  # valid ones are counted by stage 2
            self._invalid(record, exc)
            return records.dead_letter(self.dlq, record, exc)
        org = event.org_id
        headers = tuple(record.headers or ())
        partition = org_partition(org, self.partitions)
        return Outgoing(
            self.layout.work, org.encode(), record.value, record.partition, headers, partition
        )

    def _invalid(self, record: ConsumerRecord, exc: InvalidEvent) -> None:
        records.count_dead_letter(self.metrics, record, exc)


class Repartitioner(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        outbox: Outbox,
        forward: Callable[[ConsumerRecord], Outgoing],
        legacy_tiers: Sequence[str] = (),
        kafka: AIOKafkaConsumer | None = None,
    ) -> None:
        self.settings, self.metrics, self.outbox, self.forward = settings, metrics, outbox, forward
        self.topics = [settings.topic_evaluations, *legacy_tiers]
        self.offsets = OffsetTracker()
        self.kafka = kafka or AIOKafkaConsumer(
            **{**settings.kafka_client_args(), "client_id": STAGE1_CLIENT_ID},
            group_id=settings.consumer_group,
            group_instance_id=settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.session_timeout_ms // 4,
            # A revoke waits for the acks of what was forwarded (hand_back).
            rebalance_timeout_ms=max(
                settings.session_timeout_ms, int((REVOKE_DRAIN_MAX_S + 10) * 1000)
            ),
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            partition_assignment_strategy=(RangePartitionAssignor,),
        )

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping`; then everything forwarded is acknowledged and committed."""
        await self.kafka.start()
        self.kafka.subscribe(self.topics, listener=self)
        next_commit = monotonic()
        try:
            while not stopping.is_set():
                batches = await self.kafka.getmany(timeout_ms=100, max_records=STAGE1_FETCH_RECORDS)
                for tp, batch in batches.items():
                    await self.take(tp, batch)
                if monotonic() >= next_commit:
                    await self.commit()
                    self._report_lag()
                    next_commit = monotonic() + self.settings.commit_interval_ms / 1000
            await self.hand_back(set(self.kafka.assignment()))
        finally:
            await self.kafka.stop()

    async def take(self, tp: TopicPartition, batch: list[ConsumerRecord]) -> None:
        """Forward one partition's records; their offsets finish once all are acked."""
        out = [self.forward(record) for record in batch]
        offsets = [record.offset for record in batch]
        part = None
        for offset in offsets:
            part = self.offsets.add(tp, offset)
        self.metrics.repartitioned.inc(sum(1 for o in out if o.topic == self.settings.topic_work))

        def acked() -> None:  # on the assignment's own tracker: a revoke detaches it
            if part is not None:
                for offset in offsets:
                    part.finish(offset)

        await self.outbox.put(out, acked)

    async def hand_back(self, tps: set[TopicPartition]) -> None:
        """Revoke or stop: what was forwarded is acknowledged, then committed."""
        try:
            await asyncio.wait_for(self.outbox.barrier(), REVOKE_DRAIN_MAX_S)
        except TimeoutError:
            log.warning("stage 1: forwarded records not acknowledged; they will be read again")
        await self.commit(tps)
        self.offsets.forget(tps)
        for tp in tps:
            if tp.topic == self.settings.topic_evaluations:
                with suppress(KeyError):  # no lag reported for it yet
                    self.metrics.repartition_lag.remove(str(tp.partition))

    async def commit(self, tps: set[TopicPartition] | None = None) -> None:
        points = self.offsets.commit_points(tps if tps is not None else self.kafka.assignment())
        if not points:
            return
        try:
            await self.kafka.commit(points)
            self.offsets.mark_committed(points)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: the next owner reads again
            log.warning("stage 1 commit failed (%s); the records will be read again", exc)

    def _report_lag(self) -> None:
        for tp in self.kafka.assignment():
            high = self.kafka.highwater(tp)
            part = self.offsets.partitions.get(tp)
            point = part.position if part else None
            if tp.topic != self.settings.topic_evaluations or high is None or point is None:
                continue
            self.metrics.repartition_lag.labels(str(tp.partition)).set(max(0, high - point))

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self.hand_back(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("stage 1 assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
