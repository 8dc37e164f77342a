"""Tails a compacted topic into memory (configs, watermarks), like a KTable.

Every replica reads every partition (no group), from the beginning. `caught_up`
is set once the end offsets seen at start have been read: /readyz waits on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import monotonic

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from service.pipeline.topics import wait_for_topic
from service.settings import Settings

log = logging.getLogger(__name__)
OWN_FETCH_MAX_WAIT_MS = 25  # the watermark table's fetches; see TableReader
OWN_POLL_MS = 60  # two idle fetches fit in one poll
IDLE_POLL_MS = 200
Apply = Callable[[bytes | None, bytes | None], None]


class TableReader:
    def __init__(
        self, settings: Settings, topic: str, apply: Apply, *, ownable: bool = False
    ) -> None:
        self.settings = settings
        self.ownable = ownable
        self.topic = topic
        self.apply = apply
        self.caught_up = asyncio.Event()
        self.records = 0
        self.partitions = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._owning: dict[int, asyncio.Event] = {}  # partition -> set once caught up and paused
        self._owned_at: dict[int, float] = {}  # partition -> when own() asked for it

    async def own(self, partitions: set[int], timeout_s: float = 30.0) -> None:
        """Stop tailing `partitions` once they are read to their end.

        Used for the co-partitioned watermarks: while this replica owns a lead's
        partition it is that partition's only writer, so re-reading its own records
        is wasted work. The caller waits here so the previous owner's last writes are
        in memory before the partition's events are processed.
        """
        now = monotonic()
        waits = []
        for p in partitions:
            self._owned_at.setdefault(p, now)
            waits.append(self._owning.setdefault(p, asyncio.Event()))
        try:
            await asyncio.wait_for(asyncio.gather(*(w.wait() for w in waits)), timeout_s)
        except TimeoutError:
            log.warning("%s: catch-up of partitions %s timed out", self.topic, sorted(partitions))

    def disown(self, partitions: set[int]) -> None:
        """Tail `partitions` again: another replica writes them now."""
        for p in partitions:
            self._owning.pop(p, None)
            self._owned_at.pop(p, None)
        if self._consumer is not None:
            self._consumer.resume(*(TopicPartition(self.topic, p) for p in partitions))

    async def start(self, admin: AIOKafkaAdminClient) -> None:
        self._task = asyncio.create_task(self._run(admin), name=f"table:{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, admin: AIOKafkaAdminClient) -> None:
        count = await wait_for_topic(admin, self.topic)
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_args(),
            enable_auto_commit=False,
            group_id=None,
            # `own` needs an empty fetch sent after it asked, and every rebalance
            # waits for it: a short broker wait makes that tens of milliseconds.
            fetch_max_wait_ms=OWN_FETCH_MAX_WAIT_MS if self.ownable else 500,
        )
        await consumer.start()
        self._consumer, self.partitions = consumer, count
        try:
            poll_ms = OWN_POLL_MS if self.ownable else IDLE_POLL_MS  # an `own` waits a poll or two
            partitions = [TopicPartition(self.topic, p) for p in range(count)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            targets = await consumer.end_offsets(partitions)
            log.info("reading %s to its end offsets %s", self.topic, sorted(targets.values()))
            while True:
                started = monotonic()
                batches = await consumer.getmany(timeout_ms=poll_ms, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self.records += 1
                        self._apply(record.key, record.value)
                # Caught up: past the end offsets seen at start, and a fetch came back
                # empty (some brokers, Tansu among them, under-report ListOffsets).
                if (
                    not batches
                    and not self.caught_up.is_set()
                    and await _reached(consumer, targets)
                ):
                    self.caught_up.set()
                    log.info("caught up with %s (%d records)", self.topic, self.records)
                if not batches and self.caught_up.is_set():
                    await self._pause_owned(consumer, started)
        finally:
            self._consumer = None
            await consumer.stop()

    async def _pause_owned(self, consumer: AIOKafkaConsumer, fetch_started: float) -> None:
        """Pause the owned partitions read to their end, as an empty fetch that
        started after `own` asked for them shows it."""
        for p, done in self._owning.items():
            if done.is_set() or self._owned_at.get(p, fetch_started) >= fetch_started:
                continue
            tp = TopicPartition(self.topic, p)
            if await consumer.position(tp) >= (consumer.highwater(tp) or 0):
                consumer.pause(tp)
                done.set()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            self.apply(key, value)
        except Exception:  # one bad record must never stop the table
            log.exception("could not apply a record from %s", self.topic)


async def _reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    for tp, end in targets.items():
        position = await consumer.position(tp)
        if position < max(end, consumer.highwater(tp) or 0):
            return False
    return True
