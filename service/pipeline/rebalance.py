"""Rebalances: hand revoked partitions back cleanly, take new ones safely.

Revoked: the consumer hands them back (drops their queued work, lets in-flight
writes finish, commits), and their watermark partitions are tailed again
(another replica writes them now). Assigned: the new partitions are held until
this replica has read the previous owner's last watermarks for them, so no
stale evaluation gets through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from service.pipeline.table import TableReader

log = logging.getLogger(__name__)
REVOKE_DRAIN_MAX_S = 20.0  # the group waits for us; don't hold it up for long
HandBack = Callable[[set[TopicPartition], float], Awaitable[bool]]


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        kafka: AIOKafkaConsumer,
        lead_topic: str,
        marks: TableReader,
        hand_back: HandBack,
        took: Callable[[set[TopicPartition]], None],
    ) -> None:
        self.kafka = kafka
        self.topic = lead_topic
        self.marks = marks
        self.hand_back = hand_back
        self.took = took
        self._lead_partition_count = 0

    def _lead_partitions(self, tps: set[TopicPartition]) -> set[int]:
        """Evaluation partitions, which number the co-partitioned watermarks too."""
        if self.marks.partitions != self._lead_partition_count:
            return set()  # not co-partitioned (pre-existing topic): keep tailing all
        return {tp.partition for tp in tps if tp.topic == self.topic}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        revoked = set(revoked)
        self.marks.disown(self._lead_partitions(revoked))
        if revoked:
            await self.hand_back(revoked, REVOKE_DRAIN_MAX_S)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.took(set(assigned))
        self._lead_partition_count = len(self.kafka.partitions_for_topic(self.topic) or ())
        owned = self._lead_partitions(set(assigned))
        if owned:  # hold the new partitions until the previous owner's watermarks are in
            held = set(assigned) - set(self.kafka.paused())
            self.kafka.pause(*held)
            try:
                await self.marks.own(owned)
            finally:
                self.kafka.resume(*(held & self.kafka.assignment()))
        log.info(
            "partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )
