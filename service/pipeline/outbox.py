"""One way out to Kafka: a bounded outbox and a single writer.

Lanes, the router and the settler `put` records with a callback; the writer
sends everything queued as one batch per partition, awaits the broker's acks,
then runs the callbacks (which let offsets be committed). A transient producer
error is retried here with backoff, never raised into a caller: a full outbox
makes callers wait instead. A refusal no retry can fix (a record too large, a
topic this service may not write to) is handled per record by refusals.py and
never holds up the records after it. An outbox that makes no progress at all
for long shows in `stalled_s`, which /healthz reads. One writer also means one
pending batch per partition, so aiokafka's `add_batch` never queues (many
concurrent `send_batch` callers made it time out).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from time import monotonic
from typing import Any, Protocol

from aiokafka.partitioner import murmur2

from service.pipeline.produce import MAX_RECORD_BYTES, PartitionSender, Producer
from service.pipeline.records import Outgoing
from service.pipeline.refusals import Refusal, Refusals, classify

log = logging.getLogger(__name__)
RETRY_MIN_S, RETRY_MAX_S = 0.1, 5.0
FLUSHES = 4  # in flight at once; more would queue in aiokafka's add_batch
REMIND_EVERY_S = 60.0
Done = Callable[[], None]


class OutgoingQueue(Protocol):
    """Where records go: the outbox, or a list in unit tests."""

    async def put(self, records: Sequence[Outgoing], done: Done | None = None) -> None: ...


class Outbox:
    def __init__(
        self,
        producer: Producer,
        source_topic: str,
        refusals: Refusals | None = None,
        *,
        capacity: int = 20_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
        keyed: frozenset[str] = frozenset(),
    ) -> None:
        self.producer = producer
        self.keyed = keyed  # topics partitioned by key even when co-sized with source_topic
        self.source_topic = source_topic
        self.refusals = refusals or Refusals()
        self.sender = PartitionSender(producer, self.refusals, max_record_bytes)
        self.capacity = capacity
        self.queued = 0  # records waiting for the writer
        self.failing_since: float | None = None  # monotonic; None while sends succeed
        self._entries: list[tuple[Sequence[Outgoing], Done | None]] = []
        self._counts: dict[str, int] = {}
        self._work = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._reminded = 0.0
        self._flushing = 0  # flushes started whose callbacks have not run
        self._progress_at = monotonic()  # last callbacks run, or work arriving when idle

    def stalled_s(self) -> float:
        """How long records have waited without any flush completing (0 when idle)."""
        if not self._entries and not self._flushing:
            return 0.0
        return monotonic() - self._progress_at

    async def put(self, records: Sequence[Outgoing], done: Done | None = None) -> None:
        """Queue `records`; `done` runs once the broker acknowledged all of them
        (or refused them for good). Waits while the outbox is full (a broker that
        is slow or away)."""
        while self.queued >= self.capacity:
            self._room.clear()
            await self._room.wait()
        if not self._entries and not self._flushing:
            self._progress_at = monotonic()
        self._entries.append((records, done))
        self.queued += len(records)
        self._work.set()

    async def barrier(self) -> None:
        """Until everything queued so far is acknowledged."""
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not acked.done():
                acked.set_result(None)

        await self.put((), done)
        await acked

    async def run(self) -> None:
        """Up to FLUSHES flushes in flight (a flush's acks take a round trip);
        callbacks run in the order the records were put, so a barrier still means
        "everything before it is acknowledged"."""
        slots = asyncio.Semaphore(FLUSHES)
        flushes: set[asyncio.Task[None]] = set()
        previous: asyncio.Task[None] | None = None
        try:
            while True:
                if not self._entries:
                    self._work.clear()
                    await self._work.wait()
                await slots.acquire()
                entries, self._entries = self._entries, []
                self._flushing += 1
                previous = asyncio.create_task(self._flush_in_order(entries, previous, slots))
                flushes.add(previous)
                previous.add_done_callback(flushes.discard)
        finally:
            for task in flushes:
                task.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)

    async def _flush_in_order(
        self,
        entries: list[tuple[Sequence[Outgoing], Done | None]],
        previous: asyncio.Task[None] | None,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            await self._flush([r for records, _ in entries for r in records])
            if previous is not None:
                await previous
        finally:
            slots.release()
            self._flushing -= 1
        self.queued -= sum(len(records) for records, _ in entries)
        self._progress_at = monotonic()
        if self.queued < self.capacity:
            self._room.set()
        for _, done in entries:
            if done is not None:
                try:
                    done()
                except Exception:  # one caller's bug must not stop every later callback
                    log.exception("an outbox callback failed")

    async def _flush(self, records: list[Outgoing]) -> None:
        """Send until every record is acknowledged or refused for good, sending
        again only what failed transiently (and the DLQ copies of refused records)."""
        delay = RETRY_MIN_S
        while records:
            groups = await self._retrying(functools.partial(self._group, records))
            results = await asyncio.gather(
                *(self.sender.send(topic, p, items) for (topic, p), items in groups.items()),
                return_exceptions=True,
            )
            records, error = [], None
            for items, result in zip(groups.values(), results, strict=True):
                again, failed = (items, result) if isinstance(result, BaseException) else result
                records += again
                error = error or failed
            if error is not None:
                self._failing(error)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
        self._recovered()

    async def _group(self, records: list[Outgoing]) -> dict[tuple[str, int], list[Outgoing]]:
        """Records by the partition they go to; records for a topic that refuses
        everything from this service are refused here."""
        leads = await self._count(self.source_topic)
        counts: dict[str, int | tuple[Refusal, str]] = {}
        for topic in {record.topic for record in records}:
            try:
                counts[topic] = await self._count(topic)
            except Exception as exc:
                refusal = classify(exc)
                if refusal is None or not refusal.whole_topic:
                    raise  # retried
                counts[topic] = (refusal, repr(exc))
        groups: dict[tuple[str, int], list[Outgoing]] = {}
        for record in records:
            count = counts[record.topic]
            if isinstance(count, tuple):
                self.refusals.refuse(record, None, *count)
                continue
            if record.partition is not None:
                partition = record.partition
            elif count == leads and record.topic not in self.keyed:
                partition = record.source_partition
            elif record.key is not None:  # like Kafka's Java client
                partition = (murmur2(record.key) & 0x7FFFFFFF) % count
            else:
                partition = record.source_partition % count
            groups.setdefault((record.topic, partition), []).append(record)
        return groups

    async def _count(self, topic: str) -> int:
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = len(await self.producer.partitions_for(topic))
        return count

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        delay = RETRY_MIN_S
        while True:
            try:
                return await call()
            except Exception as exc:  # metadata errors are retried too
                self._failing(exc)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)

    def _failing(self, exc: BaseException) -> None:
        now = monotonic()
        if self.failing_since is None:
            self.failing_since = self._reminded = now
            log.warning("Kafka is not accepting records (%r); retrying, callers wait", exc)
        elif now - self._reminded >= REMIND_EVERY_S:
            self._reminded = now
            log.warning(
                "Kafka still not accepting records after %.0fs (%r)", now - self.failing_since, exc
            )

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.warning("Kafka accepts records again after %.1fs", monotonic() - self.failing_since)
            self.failing_since = None
