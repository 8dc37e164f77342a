"""Tails a compacted topic into memory (the configs), like a KTable.

Every replica reads every partition (no group), from the beginning. `caught_up`
is set once the end offsets seen at start have been read: /readyz waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from service.pipeline.topics import wait_for_topic
from service.settings import Settings

log = logging.getLogger(__name__)
IDLE_POLL_MS = 200
Apply = Callable[[bytes | None, bytes | None], None]


class TableReader:
    def __init__(self, settings: Settings, topic: str, apply: Apply) -> None:
        self.settings = settings
        self.topic = topic
        self.apply = apply
        self.caught_up = asyncio.Event()
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, admin: AIOKafkaAdminClient) -> None:
        self._task = asyncio.create_task(self._run(admin), name=f"table:{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, admin: AIOKafkaAdminClient) -> None:
        count = await wait_for_topic(admin, self.topic)
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_args(), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(count)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            targets = await consumer.end_offsets(partitions)
            log.info("reading %s to its end offsets %s", self.topic, sorted(targets.values()))
            while True:
                batches = await consumer.getmany(timeout_ms=IDLE_POLL_MS, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self.records += 1
                        self._apply(record.key, record.value)
                # Caught up: past the end offsets seen at start, and a fetch came back
                # empty (some brokers, Tansu among them, under-report ListOffsets).
                if not batches and not self.caught_up.is_set() and await reached(consumer, targets):
                    self.caught_up.set()
                    log.info("caught up with %s (%d records)", self.topic, self.records)
        finally:
            await consumer.stop()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            self.apply(key, value)
        except Exception:  # one bad record must never stop the table
            log.exception("could not apply a record from %s", self.topic)


async def reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    for tp, end in targets.items():
        position = await consumer.position(tp)
        if position < max(end, consumer.highwater(tp) or 0):
            return False
    return True
