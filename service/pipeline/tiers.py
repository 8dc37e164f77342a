"""Delayed work (§6): retries and deferrals wait durably in delay-tier topics.

A delivery that must wait (a transient failure, or a destination that is
behind, rate-limited, over quota or behind an open circuit) becomes a record in
a tier topic. Each tier has one delay, so its partitions are in due order: the
consumer pauses a tier partition until its head is due (TierGate), and nothing
waiting is kept in memory. A record whose own `not_before` is further out than
the tier's delay moves down to the next tier when it comes out.

The record's value is the original event bytes unchanged; the rest rides in
headers. `attempt` is the attempt it will make: a retry spends one, a deferral
does not.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from service.errors import clamp_wait
from service.models import ErrorInfo, json_bytes, rfc3339

# Seconds; tier 0 is TOPIC_RETRY itself, the others are `{TOPIC_RETRY}.{label}`.
TIERS = ((1.0, ""), (5.0, "5s"), (25.0, "25s"), (120.0, "2m"), (600.0, "10m"), (3600.0, "1h"))
EARLY_OK_S = 0.05  # released this close to not_before counts as due


def tier_topics(retry_topic: str) -> list[str]:
    return [retry_topic if not label else f"{retry_topic}.{label}" for _, label in TIERS]


def tier_for(wait_s: float) -> int:
    """The longest tier that does not overshoot `wait_s` (the shortest for small waits)."""
    best = 0
    for index, (delay, _) in enumerate(TIERS):
        if delay <= wait_s:
            best = index
    return best


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class TierRecord:
    """A delayed delivery. The record's value is the original event, byte for byte
    (a re-serialised copy once failed to parse back: a field the schema ignores may
    hold `1e400`); what the service adds travels in `ts.*` headers."""

    destination: str
    attempt: int  # the attempt this record will make
    not_before: datetime
    first_attempt_at: datetime
    last_error: ErrorInfo | None
    event: bytes  # original EvaluationCompleted JSON

    def headers(self) -> Headers:
        headers = [
            ("ts.v", b"2"),
            ("ts.destination", self.destination.encode()),
            ("ts.attempt", str(self.attempt).encode()),
            ("ts.not_before", rfc3339(self.not_before).encode()),
            ("ts.first_attempt_at", rfc3339(self.first_attempt_at).encode()),
        ]
        if self.last_error is not None:
            headers.append(("ts.last_error", json_bytes(self.last_error.model_dump())))
        return headers

    @classmethod
    def read(cls, value: bytes | None, headers: Sequence[tuple[str, bytes]] | None) -> TierRecord:
        """Raises ValueError/KeyError/TypeError on a record this service did not write."""
        found = {key: raw for key, raw in headers or () if key.startswith("ts.")}
        if "ts.v" not in found:
            return cls._legacy(value or b"")
        error = found.get("ts.last_error")
        return cls(
            destination=found["ts.destination"].decode(),
            attempt=int(found["ts.attempt"]),
            not_before=_instant(found["ts.not_before"].decode()),
            first_attempt_at=_instant(found["ts.first_attempt_at"].decode()),
            last_error=ErrorInfo.model_validate_json(error) if error else None,
            event=value or b"",
        )

    @classmethod
    def _legacy(cls, value: bytes) -> TierRecord:
        """The v1 JSON envelope, written before the upgrade (the event embedded)."""
        data = orjson.loads(value)
        error = data.get("last_error")
        return cls(
            destination=str(data["destination"]),
            attempt=int(data["attempt"]),
            not_before=_instant(data["not_before"]),
            first_attempt_at=_instant(data["first_attempt_at"]),
            last_error=ErrorInfo.model_validate(error) if error else None,
            event=orjson.dumps(data["event"]),
        )


def _instant(text: str) -> datetime:
    """An RFC 3339 time; one without an offset is taken as UTC, not a crash."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


FIRST_RETRY_S = 2.0  # a record's first retry: a blip is usually over by then


def backoff_s(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """After `attempt` failed: the first retry within seconds, later ones back off
    exponentially from `base_s`; with jitter (a burst of failures spreads apart),
    never sooner than Retry-After, never past MAX_WAIT_S."""
    if attempt <= 1:
        delay = FIRST_RETRY_S * random.uniform(0.5, 1.5)
    else:
        delay = min(max_s, base_s * 2 ** min(attempt - 2, 32)) * random.uniform(0.8, 1.2)
    return clamp_wait(max(delay, retry_after or 0.0))


def due_at(now: datetime, delay_s: float) -> datetime:
    return (now + timedelta(seconds=clamp_wait(delay_s))).astimezone(UTC)


class TierGate:
    """Pauses each tier partition until its head record is due: a tier's records
    all wait the same time, so a partition is in due order, and the cost of waiting
    work is one paused partition, none of it in memory."""

    def __init__(self, retry_topic: str) -> None:
        self.topics = tier_topics(retry_topic)
        self.delay_of = {topic: delay for topic, (delay, _) in zip(self.topics, TIERS, strict=True)}
        self.paused_until: dict[
            TopicPartition, float
        ] = {}  # partition -> when its head is due (epoch s)

    def is_tier(self, topic: str) -> bool:
        return topic in self.delay_of

    def due(
        self, tp: TopicPartition, records: list[ConsumerRecord], now: float
    ) -> tuple[list[ConsumerRecord], int | None]:
        """The leading records that are due, and the offset of the first one that is
        not (the caller seeks back to it and leaves the partition paused), if any."""
        delay = self.delay_of[tp.topic]
        for index, record in enumerate(records):
            due = record.timestamp / 1000 + delay
            if due > now + EARLY_OK_S:
                self.paused_until[tp] = due
                return records[:index], record.offset
        return records, None

    def released(self, now: float) -> set[TopicPartition]:
        """Paused tier partitions whose head is due now: resume them."""
        ready = {tp for tp, due in self.paused_until.items() if due <= now + EARLY_OK_S}
        for tp in ready:
            del self.paused_until[tp]
        return ready

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self.paused_until.pop(tp, None)
