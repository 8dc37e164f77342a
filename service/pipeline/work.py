"""Units of work: a Job per consumed record, a Delivery per (event, destination).

Exactly-once accounting: a delivery settles once (`Delivery.claim`), whatever
path it takes, and each settle counts its Job down once; a Job finishes its
offset once. Dropped or abandoned deliveries never settle: their offsets leave
with their partition (offsets.py), so nothing is counted twice or leaked.

Both are slotted: up to MAX_INFLIGHT of them are alive at once, and an object
without a __dict__ is smaller and cheaper for the garbage collector to walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import TopicPartition

from service.models import DestinationConfig, EvaluationCompleted, epoch_us, rfc3339
from service.pipeline.offsets import PartitionOffsets


@dataclass(eq=False, slots=True)
class Job:
    """A consumed record. Its offset may be committed once `remaining` reaches 0,
    that is, when every delivery it started is settled (terminal status acked, or
    handed to the retry topic)."""

    tp: TopicPartition
    offset: int
    remaining: int
    offsets: PartitionOffsets  # of the assignment it was consumed in
    revoked: bool = False  # its partition was handed back while it was being written

    def delivery_settled(self) -> None:
        """One of its deliveries is settled (or it had none)."""
        self.remaining -= 1
        if self.remaining == 0:
            self.offsets.finish(self.offset)


@dataclass(eq=False, slots=True)
class Delivery:
    event: EvaluationCompleted
    raw: bytes  # the original event bytes, carried into retry records unchanged
    config: DestinationConfig
    job: Job
    attempt: int = 1
    first_attempt_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    settled: bool = False  # see claim()
    sent: bool = False  # a write carrying it went out: the CRM may hold it, in part

    destination: str = field(init=False)  # config.destination, read several times per event
    lead_key: str = field(init=False)  # org:destination:lead, the watermark key
    evaluated_at_text: str = field(init=False)
    evaluated_at_us: int = field(init=False)  # what the stale check compares

    def __post_init__(self) -> None:
        # Plain attributes, not properties: this is the per-event hot path.
        self.destination = self.config.destination
        self.lead_key = f"{self.event.org_id}:{self.destination}:{self.event.lead.lead_id}"
        evaluated_at = self.event.evaluation.evaluated_at
        self.evaluated_at_text = rfc3339(evaluated_at)
        self.evaluated_at_us = epoch_us(evaluated_at)

    def claim(self) -> bool:
        """True the first time only: the one caller that may settle this delivery."""
        if self.settled:
            return False
        self.settled = True
        return True
