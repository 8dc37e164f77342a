"""Lead trace: one lead's delivery statuses, read back from the status topic.

Statuses are keyed `{org_id}:{lead_id}`, so the scan compares key bytes and
parses only the lead's own records. It starts at the offsets that
`offsets_for_times` gives for `since` and stops at the end offsets seen at
start, so it ends while the service goes on publishing. Records are also
filtered by timestamp here: a broker that does not answer time lookups (Tansu
answers offset 0) costs a longer scan, never a wrong answer. The CLI is in
`service/commands/trace_cli.py`, the output in `service/commands/trace_format.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from service.errors import DestinationsError
from service.pipeline.topics import partition_count
from service.settings import Settings

POLL_MS = 500
IDLE_FETCHES_MAX = 40  # empty fetches in a row below the end offsets (~20 s): Kafka is gone
RETRY_CONNECT_S = 1.0


class KafkaUnreachable(DestinationsError):
    pass


class TopicMissing(DestinationsError):
    pass


@dataclass(frozen=True)
class Found:
    """One status of the lead, where it was read."""

    partition: int
    offset: int
    timestamp_ms: int
    status: dict[str, Any]


@dataclass
class Scan:
    partitions: int = 0
    total: int = 0  # records between the start and end offsets
    scanned: int = 0
    found: list[Found] = field(default_factory=list)
    unreadable: int = 0  # the lead's records that are not a JSON object
    incomplete: list[str] = field(default_factory=list)  # partitions not read to the end


def lead_key(org_id: str, lead_id: str) -> bytes:
    return f"{org_id}:{lead_id}".encode()


def parse(value: bytes | None) -> dict[str, Any] | None:
    try:
        status = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return status if isinstance(status, dict) else None


async def _connect(settings: Settings, timeout_s: float) -> tuple[AIOKafkaConsumer, int]:
    """A started consumer and the status topic's partition count, retried until
    `timeout_s` (a broker that refuses connections fails at once, one that drops
    packets only after aiokafka's own timeouts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = "no answer"
    while loop.time() < deadline:
        try:
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                return await _try_connect(settings)
        except (KafkaError, OSError, TimeoutError) as exc:
            last = type(exc).__name__
        await asyncio.sleep(min(RETRY_CONNECT_S, max(0.0, deadline - loop.time())))
    raise KafkaUnreachable(
        f"Kafka at {settings.bootstrap_servers} did not answer within {timeout_s:g}s ({last})"
    )


async def _try_connect(settings: Settings) -> tuple[AIOKafkaConsumer, int]:
    admin = AIOKafkaAdminClient(**settings.kafka_client_args())
    try:
        await admin.start()
        count = await partition_count(admin, settings.topic_status)
    finally:
        await admin.close()
    if count is None:
        raise TopicMissing(f"the status topic {settings.topic_status!r} does not exist")
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_args(),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",  # a start offset deleted by retention meanwhile
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return consumer, count


async def _start_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], since_ms: int
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    ends = await consumer.end_offsets(tps)
    begins = await consumer.beginning_offsets(tps)
    at = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
    # None: no record at or after `since` in that partition.
    starts = {tp: ends[tp] if at[tp] is None else max(begins[tp], at[tp].offset) for tp in tps}
    return starts, ends


async def trace(
    settings: Settings,
    org_id: str,
    lead_id: str,
    since_ms: int,
    *,
    connect_timeout_s: float = 15.0,
    on_total: Callable[[int], object] = lambda _: None,
    on_read: Callable[[int], object] = lambda _: None,
) -> Scan:
    """The lead's statuses at or after `since_ms`, in the order read."""
    key = lead_key(org_id, lead_id)
    consumer, count = await _connect(settings, connect_timeout_s)
    scan = Scan(partitions=count)
    try:
        tps = [TopicPartition(settings.topic_status, p) for p in range(count)]
        consumer.assign(tps)
        try:
            async with asyncio.timeout(connect_timeout_s):
                starts, ends = await _start_offsets(consumer, tps, since_ms)
        except TimeoutError:
            raise KafkaUnreachable(
                f"Kafka did not answer the offset lookups within {connect_timeout_s:g}s"
            ) from None
        for tp in tps:
            consumer.seek(tp, starts[tp])
        scan.total = sum(max(0, ends[tp] - starts[tp]) for tp in tps)
        on_total(scan.total)
        targets = {tp: ends[tp] for tp in tps if ends[tp] > starts[tp]}
        await _read(consumer, targets, Pick(key, since_ms), scan, on_total, on_read)
    finally:
        await consumer.stop()
    return scan


@dataclass(frozen=True)
class Pick:
    key: bytes
    since_ms: int


async def _read(
    consumer: AIOKafkaConsumer,
    targets: dict[TopicPartition, int],
    pick: Pick,
    scan: Scan,
    on_total: Callable[[int], object],
    on_read: Callable[[int], object],
) -> None:
    """Read each partition up to its target offset, keeping the lead's records."""
    widened: set[TopicPartition] = set()
    idle = 0
    while targets and idle < IDLE_FETCHES_MAX:
        fetched = await consumer.getmany(*targets, timeout_ms=POLL_MS)
        idle = 0 if fetched else idle + 1
        for tp, records in fetched.items():
            if tp not in widened:
                # Some brokers (Tansu) report an end offset short of the last batch's
                # end; the first fetch's high watermark, also taken at start, is right.
                widened.add(tp)
                end = max(targets[tp], consumer.highwater(tp) or 0)
                if end > targets[tp]:
                    scan.total += end - targets[tp]
                    on_total(scan.total)
                    targets[tp] = end
            picked = [r for r in records if r.offset < targets[tp]]
            for record in picked:
                # Key bytes first: only the lead's own records are parsed.
                if record.key == pick.key and record.timestamp >= pick.since_ms:
                    status = parse(record.value)
                    if status is None:
                        scan.unreadable += 1
                    else:
                        scan.found.append(
                            Found(tp.partition, record.offset, record.timestamp, status)
                        )
            scan.scanned += len(picked)
            on_read(len(picked))
        for tp in list(targets):
            if await consumer.position(tp) >= targets[tp]:
                del targets[tp]
                consumer.pause(tp)
    scan.incomplete = [
        f"partition {tp.partition} (end offset {end})" for tp, end in sorted(targets.items())
    ]
