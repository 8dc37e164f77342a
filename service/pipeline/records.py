"""What the service writes to Kafka, as plain records: statuses, delayed work,
watermarks and dead letters. Built here, sent by the outbox (outbox.py).

A record names the partition number of the record that caused it. Topics with
as many partitions as the evaluations topic (all the ones this service creates)
take that number, so a lead's statuses, delayed work and watermarks are
co-partitioned with its events whatever partitioner the producers upstream use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from service.errors import InvalidEvent
from service.metrics import Metrics
from service.models import json_bytes

log = logging.getLogger(__name__)
Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    source_partition: int  # partition number of the record that caused it
    headers: Headers = ()
    partition: int | None = None  # explicit: a record re-keyed to its org's partition

    def size(self) -> int:
        """Bytes of key, value and headers (what a broker's size limits count,
        less a few bytes of framing)."""
        size = len(self.key or b"") + len(self.value or b"")
        for name, value in self.headers:
            size += len(name) + len(value)
        return size


def status(topic: str, key: bytes, value: bytes, source: int) -> Outgoing:
    return Outgoing(topic, key, value, source)


def watermark(
    topic: str,
    lead_key: str,
    evaluated_at: str,
    evaluation_id: str,
    source: int,
    written: bool = True,
) -> Outgoing:
    """The changelog of a lead's mark; `written: false` marks an attempt whose
    answer said no or was lost (the CRM may hold it, in part)."""
    data: dict[str, object] = {"evaluated_at": evaluated_at, "evaluation_id": evaluation_id}
    if not written:
        data["written"] = False
    return Outgoing(topic, lead_key.encode(), json_bytes(data), source)


def count_dead_letter(metrics: Metrics, record: ConsumerRecord, error: InvalidEvent) -> None:
    """Count and log an invalid event on its way to the DLQ (either stage)."""
    metrics.events_invalid.labels(error.code).inc()
    metrics.dlq.labels(error.stage).inc()
    log.warning(
        "invalid event at %s[%d]@%d to DLQ: %s (%s)",
        record.topic,
        record.partition,
        record.offset,
        error.code,
        error.message[:200],
    )


def dead_letter(topic: str, record: ConsumerRecord, error: InvalidEvent) -> Outgoing:
    """The original key, value and headers, plus what went wrong and where from (§6)."""
    extra = {
        "error.code": error.code,
        "error.message": error.message[:1000],
        "error.stage": error.stage,
        "source.topic": record.topic,
        "source.partition": str(record.partition),
        "source.offset": str(record.offset),
    }
    headers = (*(record.headers or ()), *((k, v.encode()) for k, v in extra.items()))
    return Outgoing(topic, record.key, record.value, record.partition, headers)
