"""Stage 2's consumer without a broker: commits stop at the lowest unfinished
record, tier records wait in Kafka (seek back, pause) until due, a hand-back
drains, says when it let go and commits, and lag is reported per partition."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from service.metrics import Metrics
from service.pipeline import consumer as consumer_module
from service.pipeline.consumer import Consumer
from service.pipeline.offsets import OffsetTracker
from service.pipeline.tiers import TierGate
from service.settings import Settings


class FakeKafka:
    def __init__(self, **_: Any) -> None:
        self.assigned: set[TopicPartition] = set()
        self.fetch: dict[TopicPartition, list[Any]] = {}
        self.paused: set[TopicPartition] = set()
        self.seeks: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.refuse_commit = False
        self.high: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    async def getmany(self, *tps: TopicPartition, **_: Any) -> dict[TopicPartition, list[Any]]:
        return {tp: self.fetch.pop(tp) for tp in tps if tp in self.fetch}

    async def commit(self, points: dict[TopicPartition, int]) -> None:
        if self.refuse_commit:
            raise CommitFailedError("rebalancing")
        self.commits.append(points)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high.get(tp)


class FakeRouter:
    def __init__(self, gate: TierGate) -> None:
        self.gate = gate
        self.routed: list[tuple[TopicPartition, list[int]]] = []

    async def on_records(self, tp: TopicPartition, records: list[Any]) -> None:
        self.routed.append((tp, [r.offset for r in records]))


class FakeLanes:
    def __init__(self) -> None:
        self.drained: list[set[TopicPartition]] = []

    async def drain(self, tps: set[TopicPartition], timeout_s: float) -> tuple[int, bool]:
        self.drained.append(tps)
        return 2, True


class FakeOutbox:
    def __init__(self, acks: bool = True) -> None:
        self.acks = acks
        self.put_records: list[Any] = []

    async def put(self, records: list[Any], done: Any = None) -> None:
        self.put_records += records

    async def barrier(self) -> None:
        if not self.acks:
            await asyncio.sleep(3600)


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", FakeKafka)
    settings = Settings(bootstrap_servers="unused:9092", max_inflight=3)
    gate = TierGate(settings.topic_retry)
    metrics = Metrics()
    p = SimpleNamespace(
        settings=settings,
        metrics=metrics,
        gate=gate,
        router=FakeRouter(gate),
        offsets=OffsetTracker(),
        lanes=FakeLanes(),
        outbox=FakeOutbox(),
        restorer=SimpleNamespace(stores=SimpleNamespace(close=lambda numbers: None)),
    )
    p.consumer = Consumer(
        settings,
        metrics,
        p.router,
        p.offsets,
        p.lanes,
        p.outbox,
        p.restorer,
        None,  # type: ignore[arg-type]
    )
    p.kafka = p.consumer.kafka
    p.work = TopicPartition(settings.topic_work, 0)
    return p


async def test_a_commit_stops_at_the_lowest_unfinished_record(parts: SimpleNamespace) -> None:
    parts.kafka.assigned = {parts.work}
    for offset in (10, 11, 12):
        parts.offsets.add(parts.work, offset)
    parts.offsets.partitions[parts.work].finish(10)
    parts.offsets.partitions[parts.work].finish(12)
    await parts.consumer.commit()
    assert parts.kafka.commits == [{parts.work: 11}]  # 11 is still being written
    await parts.consumer.commit()
    assert len(parts.kafka.commits) == 1  # nothing new to commit: no request


async def test_a_refused_commit_is_survived_and_tried_again(parts: SimpleNamespace) -> None:
    parts.kafka.assigned = {parts.work}
    parts.offsets.add(parts.work, 0)
    parts.offsets.partitions[parts.work].finish(0)
    parts.kafka.refuse_commit = True
    await parts.consumer.commit()
    parts.kafka.refuse_commit = False
    await parts.consumer.commit()
    assert parts.kafka.commits == [{parts.work: 1}]


def test_full_at_max_inflight_records(parts: SimpleNamespace) -> None:
    for offset in range(2):
        parts.offsets.add(parts.work, offset)
    assert not parts.consumer.full()
    parts.offsets.add(parts.work, 2)
    assert parts.consumer.full()


def record(offset: int, timestamp_ms: float) -> Any:
    return SimpleNamespace(offset=offset, timestamp=timestamp_ms)


async def test_tier_records_not_due_wait_in_kafka_behind_a_paused_partition(
    parts: SimpleNamespace,
) -> None:
    tier = TopicPartition(parts.gate.topics[1], 0)  # the 5 s tier
    parts.kafka.assigned = {parts.work, tier}
    now_ms = time.time() * 1000
    parts.kafka.fetch = {
        tier: [record(4, now_ms - 10_000), record(5, now_ms), record(6, now_ms)],
        parts.work: [record(0, now_ms)],
    }
    await parts.consumer._fetch(parts.kafka.assignment())
    assert sorted(parts.router.routed) == sorted([(tier, [4]), (parts.work, [0])])
    assert parts.kafka.seeks == {tier: 5}  # the first one not due is read again later
    assert parts.kafka.paused == {tier} and tier in parts.gate.paused_until
    parts.kafka.fetch = {tier: [record(5, now_ms)]}
    await parts.consumer._fetch(parts.kafka.assignment())  # still held: not fetched
    assert len(parts.router.routed) == 2


async def test_a_hand_back_drains_says_when_it_let_go_and_commits(
    parts: SimpleNamespace,
) -> None:
    tier = TopicPartition(parts.gate.topics[0], 0)
    parts.kafka.assigned = {parts.work, tier}
    parts.offsets.add(parts.work, 7)
    parts.offsets.partitions[parts.work].finish(7)
    finished = await parts.consumer.hand_back({parts.work, tier}, 1.0)
    assert finished and parts.lanes.drained == [{parts.work, tier}]
    (released,) = parts.outbox.put_records  # one record for the one work partition
    assert released.topic == parts.settings.topic_watermarks
    assert parts.kafka.commits == [{parts.work: 8}]
    assert parts.offsets.pending() == 0 and parts.work not in parts.offsets.partitions


async def test_a_hand_back_whose_acks_do_not_come_says_it_did_not_finish(
    parts: SimpleNamespace,
) -> None:
    parts.outbox.acks = False
    parts.kafka.assigned = {parts.work}
    assert await parts.consumer.hand_back({parts.work}, 0.1) is False


def test_lag_per_work_partition_and_the_delayed_backlog(parts: SimpleNamespace) -> None:
    tier = TopicPartition(parts.gate.topics[0], 0)
    parts.kafka.assigned = {parts.work, tier}
    parts.kafka.high = {parts.work: 50, tier: 9}
    parts.offsets.add(parts.work, 40)
    parts.offsets.add(tier, 5)
    parts.consumer._report_lag()
    assert parts.metrics.consumer_lag.labels("0")._value.get() == 10
    assert parts.metrics.retry_pending._value.get() == 4
