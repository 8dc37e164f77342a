"""DLQ replay: republish dead-lettered events to the evaluations topic.

It reads the DLQ from the beginning up to the end offsets taken at start, so it
ends even while the service dead-letters more (a replayed event that is still
invalid lands in the DLQ again, past those offsets). Each record picked is sent
with its original key, value and headers, minus the `error.*` and `source.*`
headers that dead-lettering added. The CLI is in `service/commands/replay_cli.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from service.pipeline.topics import partition_count
from service.settings import Settings

log = logging.getLogger(__name__)
DLQ_HEADER_PREFIXES = ("error.", "source.")
IDLE_FETCHES_MAX = 40  # empty fetches in a row below the end offsets (~20 s): give up
SEND_WINDOW = 1_000  # producer futures awaited in groups, so memory stays flat


class TopicMissing(Exception):
    pass


@dataclass(frozen=True)
class ReplayFilter:
    """Which records to replay. Times are epoch milliseconds, compared with the
    DLQ record's timestamp: `since` inclusive, `until` exclusive."""

    org_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def skip_reason(self, key: bytes | None, timestamp_ms: int) -> str | None:
        if self.org_id is not None and not (key or b"").startswith(f"{self.org_id}:".encode()):
            return "other_org"
        if self.since_ms is not None and timestamp_ms < self.since_ms:
            return "before_since"
        if self.until_ms is not None and timestamp_ms >= self.until_ms:
            return "not_before_until"
        return None


def replay_headers(headers: Sequence[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    """The event's own headers: what dead-lettering added is dropped."""
    return [(k, v) for k, v in headers or () if not k.startswith(DLQ_HEADER_PREFIXES)]


@dataclass
class Summary:
    dry_run: bool
    read: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # error.code of those replayed
    incomplete: list[str] = field(default_factory=list)  # partitions not read to the end

    def lines(self, dlq: str, target: str) -> list[str]:
        verb = "would replay" if self.dry_run else "replayed"
        lines = [
            f"read {self.read} records from {dlq} (up to its end offsets at start)",
            f"{verb} {self.replayed} to {target}" + (" (dry run: nothing sent)" * self.dry_run),
        ]
        if self.skipped:
            lines.append(f"skipped {self.skipped.total()}: {_counts(self.skipped)}")
        if self.codes:
            lines.append(f"{verb} by error.code: {_counts(self.codes)}")
        for what in self.incomplete:
            lines.append(f"warning: stopped before the end of {what}")
        return lines


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def _error_code(headers: Sequence[tuple[str, bytes]] | None) -> str:
    for key, value in headers or ():
        if key == "error.code":
            return value.decode("utf-8", "replace")
    return "unknown"


async def dlq_partitions(settings: Settings) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**settings.kafka_client_args())
    await admin.start()
    try:
        count = await partition_count(admin, settings.topic_dlq)
    finally:
        await admin.close()
    if count is None:
        raise TopicMissing(f"the DLQ topic {settings.topic_dlq!r} does not exist")
    return [TopicPartition(settings.topic_dlq, p) for p in range(count)]


async def replay(
    settings: Settings,
    selection: ReplayFilter,
    *,
    dry_run: bool = False,
    on_total: Callable[[int], object] = lambda _: None,
    on_read: Callable[[int], object] = lambda _: None,
) -> Summary:
    """Replay what `selection` picks; `on_total` gets the record count to read,
    `on_read` each step (a progress bar)."""
    tps = await dlq_partitions(settings)
    target = settings.topic_evaluations
    summary = Summary(dry_run=dry_run)
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_args(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = None
    if not dry_run:
        producer = AIOKafkaProducer(
            **settings.kafka_client_args(),
            acks="all",
            enable_idempotence=False,
            max_request_size=16 * 1024 * 1024,  # the DLQ keeps oversized events unchanged
        )
        await producer.start()
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        on_total(sum(max(0, ends[tp] - starts[tp]) for tp in tps))
        await consumer.seek_to_beginning(*tps)
        sends: list[asyncio.Future[object]] = []
        open_tps = {tp for tp in tps if ends[tp] > starts[tp]}
        idle = 0
        while open_tps and idle < IDLE_FETCHES_MAX:
            fetched = await consumer.getmany(*open_tps, timeout_ms=500)
            idle = 0 if fetched else idle + 1
            for tp, records in fetched.items():
                picked = [r for r in records if r.offset < ends[tp]]
                for record in picked:
                    if _pick(record, selection, summary) and producer is not None:
                        headers = replay_headers(record.headers)
                        sends.append(
                            await producer.send(
                                target, value=record.value, key=record.key, headers=headers
                            )
                        )
                on_read(len(picked))
                if len(sends) >= SEND_WINDOW:
                    await asyncio.gather(*sends)
                    sends.clear()
            for tp in list(open_tps):
                if await consumer.position(tp) >= ends[tp]:
                    open_tps.discard(tp)
                    consumer.pause(tp)
        await asyncio.gather(*sends)
        summary.incomplete = [
            f"partition {tp.partition} (end offset {ends[tp]})" for tp in sorted(open_tps)
        ]
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return summary


def _pick(record: ConsumerRecord, selection: ReplayFilter, summary: Summary) -> bool:
    summary.read += 1
    why = selection.skip_reason(record.key, record.timestamp)
    if why is not None:
        summary.skipped[why] += 1
        return False
    summary.replayed += 1
    summary.codes[_error_code(record.headers)] += 1
    return True
