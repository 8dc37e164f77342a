"""The rebalance listener without a broker: new partitions wait for their state,
a failed restore keeps them waiting and is retried, revoked ones are handed back
and only the stores no kept partition shares are closed."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from service.pipeline import rebalance
from service.pipeline.rebalance import REVOKE_DRAIN_MAX_S, Rebalance

WORK, TIER = "work", "work.retry"


class FakeConsumer:
    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.held: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.held)

    def pause(self, *tps: TopicPartition) -> None:
        self.held |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.held -= set(tps)


class Calls:
    def __init__(self, fail_restores: int = 0) -> None:
        self.fail_restores = fail_restores
        self.handed_back: list[tuple[set[TopicPartition], float]] = []
        self.took: list[set[TopicPartition]] = []
        self.restored: list[set[int]] = []
        self.closed: list[set[int]] = []
        self.failed = 0

    async def hand_back(self, tps: set[TopicPartition], timeout_s: float) -> bool:
        self.handed_back.append((tps, timeout_s))
        return True

    async def restore(self, numbers: set[int]) -> None:
        if self.fail_restores:
            self.fail_restores -= 1
            raise ConnectionError("broker blip")
        self.restored.append(numbers)

    def count_failure(self) -> None:
        self.failed += 1


def listener(kafka: FakeConsumer, calls: Calls) -> Rebalance:
    return Rebalance(
        kafka,
        WORK,
        calls.hand_back,
        calls.took.append,
        calls.restore,
        calls.closed.append,
        calls.count_failure,
    )


def tps(topic: str, *numbers: int) -> set[TopicPartition]:
    return {TopicPartition(topic, n) for n in numbers}


async def test_new_partitions_are_restored_by_number_then_resumed() -> None:
    new = tps(WORK, 1, 2) | tps(TIER, 1, 2)
    kafka, calls = FakeConsumer(*new), Calls()
    await listener(kafka, calls).on_partitions_assigned(new)
    assert calls.took == [new]
    assert calls.restored == [{1, 2}]  # one store per number, tiers included
    assert kafka.held == set()


async def test_a_failed_restore_keeps_them_paused_until_a_retry_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = tps(WORK, 0)
    kafka, calls = FakeConsumer(*new), Calls(fail_restores=1)
    r = listener(kafka, calls)
    clock = [100.0]
    monkeypatch.setattr(rebalance, "monotonic", lambda: clock[0])
    await r.on_partitions_assigned(new)
    assert kafka.held == new and r.unrestored == new and calls.failed == 1
    await r.retry_restore()  # too soon: nothing tried
    assert calls.restored == [] and kafka.held == new
    clock[0] += rebalance.RESTORE_RETRY_S
    await r.retry_restore()
    assert calls.restored == [{0}] and kafka.held == set() and r.unrestored == set()


async def test_a_partition_revoked_before_its_restore_is_no_longer_owed() -> None:
    kafka, calls = FakeConsumer(*tps(WORK, 0, 1)), Calls(fail_restores=1)
    r = listener(kafka, calls)
    await r.on_partitions_assigned(tps(WORK, 0, 1))
    kafka.assigned = tps(WORK, 1)  # partition 0 went elsewhere meanwhile
    r._retry_at = 0.0
    await r.retry_restore()
    assert calls.restored == [{1}] and r.unrestored == set()


async def test_revoked_partitions_are_handed_back_and_unshared_stores_closed() -> None:
    kafka = FakeConsumer(*tps(WORK, 0, 1), *tps(TIER, 0, 1))
    calls = Calls()
    # Work partition 1 goes, and so does tier partition 0; tier 1 and work 0 stay.
    revoked = tps(WORK, 1) | tps(TIER, 0)
    await listener(kafka, calls).on_partitions_revoked(revoked)
    assert calls.handed_back == [(revoked, REVOKE_DRAIN_MAX_S)]
    assert calls.closed == [set()]  # numbers 0 and 1 are both still held by a topic
    kafka.assigned -= revoked
    await listener(kafka, calls).on_partitions_revoked(tps(TIER, 1))
    assert calls.closed[-1] == {1}


async def test_an_empty_revocation_does_nothing() -> None:
    kafka, calls = FakeConsumer(*tps(WORK, 0)), Calls()
    await listener(kafka, calls).on_partitions_revoked(set())
    assert calls.handed_back == [] and calls.closed == []
