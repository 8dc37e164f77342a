"""The table reader without a broker: every partition from the beginning, in order;
caught up only past the end offsets seen at start and after an empty fetch; a
record that cannot be applied does not stop the table."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from service.pipeline import table
from service.pipeline.table import TableReader
from service.settings import Settings

TOPIC = "configs"


class FakeLog:
    """Two partitions of a compacted topic, served one record per fetch."""

    instance: FakeLog

    def __init__(self, **_: Any) -> None:
        FakeLog.instance = self
        self.rows = {0: [(b"a", b"1"), (b"b", b"bad")], 1: [(b"c", b"3")]}
        self.at: dict[TopicPartition, int] = {}
        self.from_start = False
        self.stopped = False

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.stopped = True

    def assign(self, tps: list[TopicPartition]) -> None:
        self.at = dict.fromkeys(tps, 5)  # anywhere: the reader must seek to the start

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.from_start = True
        for tp in tps:
            self.at[tp] = 0

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.rows[tp.partition]) for tp in tps}

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        for tp, at in self.at.items():
            rows = self.rows[tp.partition]
            if at < len(rows):
                self.at[tp] = at + 1
                key, value = rows[at]
                return {tp: [SimpleNamespace(key=key, value=value, offset=at)]}
        return {}

    async def position(self, tp: TopicPartition) -> int:
        return self.at[tp]

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.rows[tp.partition])


@pytest.fixture(autouse=True)
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    async def two_partitions(admin: Any, topic: str) -> int:
        return 2

    monkeypatch.setattr(table, "AIOKafkaConsumer", FakeLog)
    monkeypatch.setattr(table, "wait_for_topic", two_partitions)


async def test_reads_every_partition_from_the_start_and_then_is_caught_up() -> None:
    applied: list[tuple[bytes | None, bytes | None]] = []

    def apply(key: bytes | None, value: bytes | None) -> None:
        if value == b"bad":
            raise ValueError("not a config")
        applied.append((key, value))

    reader = TableReader(Settings(bootstrap_servers="unused:9092"), TOPIC, apply)
    await reader.start(admin=None)  # type: ignore[arg-type]
    await asyncio.wait_for(reader.caught_up.wait(), 5)
    assert FakeLog.instance.from_start
    assert sorted(applied) == [(b"a", b"1"), (b"c", b"3")]  # the bad one skipped, not fatal
    assert reader.records == 3
    await reader.stop()
    assert FakeLog.instance.stopped


async def test_not_caught_up_while_a_partition_is_behind_its_end() -> None:
    reader = TableReader(Settings(bootstrap_servers="unused:9092"), TOPIC, lambda k, v: None)
    consumer = FakeLog()
    consumer.assign([TopicPartition(TOPIC, 0)])
    await consumer.seek_to_beginning(TopicPartition(TOPIC, 0))
    targets = {TopicPartition(TOPIC, 0): 2}
    assert not await table.reached(consumer, targets)  # type: ignore[arg-type]
    consumer.at[TopicPartition(TOPIC, 0)] = 2
    assert await table.reached(consumer, targets)  # type: ignore[arg-type]
    consumer.rows[0].append((b"late", b"x"))  # the high watermark moved past the target
    assert not await table.reached(consumer, targets)  # type: ignore[arg-type]
    assert not reader.caught_up.is_set()
