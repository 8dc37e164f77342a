"""Stage 2's fetch fairness without a broker: one partition never holds the whole
in-flight budget, so a big org's burst cannot stop the other tenants' fetches."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition

from service.pipeline.consumer import PARTITION_SHARE, Consumer
from service.pipeline.offsets import OffsetTracker
from service.settings import Settings

BIG, SMALL = TopicPartition("work", 0), TopicPartition("work", 1)


def crowded(tracker: OffsetTracker, **settings: int) -> set[TopicPartition]:
    s = Settings(bootstrap_servers="unused:9092", **settings)  # type: ignore[arg-type]
    return Consumer.crowded(SimpleNamespace(settings=s, offsets=tracker))  # type: ignore[arg-type]


def test_a_partition_at_its_share_of_records_is_crowded_and_the_others_are_not() -> None:
    tracker = OffsetTracker()
    share = int(PARTITION_SHARE * 1_000)
    for offset in range(share):
        tracker.add(BIG, offset, 10)
    tracker.add(SMALL, 0, 10)
    assert crowded(tracker, max_inflight=1_000) == {BIG}
    assert tracker.pending() < 1_000  # not full: SMALL is still fetched
    tracker.partitions[BIG].finish(0)
    assert crowded(tracker, max_inflight=1_000) == set()


def test_a_partition_at_its_share_of_bytes_is_crowded() -> None:
    tracker = OffsetTracker()
    tracker.add(BIG, 0, 800)
    tracker.add(SMALL, 0, 100)
    assert crowded(tracker, max_inflight=1_000, max_inflight_bytes=1_000) == {BIG}
