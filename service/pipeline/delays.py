"""Holds each delay-tier partition until its head record is due.

A tier's records all wait the same time, so a partition is in due order: when
its head is not due yet, the consumer seeks back to it and pauses the partition
until then. The cost of waiting work is one paused partition, whatever the
number of records behind its head, and none of them is held in memory.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from service.pipeline.retry import EARLY_OK_S, TIERS, tier_topics


class TierGate:
    def __init__(self, retry_topic: str) -> None:
        self.topics = tier_topics(retry_topic)
        self.delay_of = {topic: delay for topic, (delay, _) in zip(self.topics, TIERS, strict=True)}
        self.held: dict[TopicPartition, float] = {}  # partition -> when its head is due (epoch s)

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
                self.held[tp] = due
                return records[:index], record.offset
        return records, None

    def released(self, now: float) -> set[TopicPartition]:
        """Held partitions whose head is due now: resume them."""
        ready = {tp for tp, due in self.held.items() if due <= now + EARLY_OK_S}
        for tp in ready:
            del self.held[tp]
        return ready

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self.held.pop(tp, None)
