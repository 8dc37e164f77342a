"""Rebalances: hand revoked partitions over cleanly, take new ones safely.

Revoked: drain their in-flight records (bounded), commit, forget them, and tail
their watermark partitions again (another replica writes them now).
Assigned: hold the new partitions until this replica has read the previous
owner's last watermarks for them, so no stale evaluation gets through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiokafka import ConsumerRebalanceListener, TopicPartition

from service.pipeline.table import TableReader

if TYPE_CHECKING:
    from service.pipeline.consumer import Consumer

log = logging.getLogger(__name__)
REVOKE_DRAIN_MAX_S = 20.0  # the group waits for us; don't hold it up for long


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: Consumer, marks: TableReader) -> None:
        self.consumer = consumer
        self.marks = marks
        self.topic = consumer.settings.topic_evaluations
        self._evaluation_partitions = 0

    def _lead_partitions(self, tps: set[TopicPartition]) -> set[int]:
        """Evaluation partitions, which number the co-partitioned watermarks too."""
        if self.marks.partitions != self._evaluation_partitions:
            return set()  # not co-partitioned (pre-existing topic): keep tailing all
        return {tp.partition for tp in tps if tp.topic == self.topic}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        revoked = set(revoked)
        self.marks.disown(self._lead_partitions(revoked))
        if not revoked:
            return
        c = self.consumer
        done = await c.drain(min(c.settings.shutdown_timeout_s, REVOKE_DRAIN_MAX_S), revoked)
        await c.commit(revoked)
        c.offsets.forget(revoked)
        log.info("partitions revoked: %d (drained: %s)", len(revoked), done)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        kafka = self.consumer.kafka
        self.consumer.paused &= set(kafka.assignment())
        self._evaluation_partitions = len(kafka.partitions_for_topic(self.topic) or ())
        owned = self._lead_partitions(set(assigned))
        if owned:  # hold the new partitions until the previous owner's watermarks are in
            held = set(assigned) - self.consumer.paused
            kafka.pause(*held)
            try:
                await self.marks.own(owned)
            finally:
                kafka.resume(*(held & kafka.assignment()))
        log.info(
            "partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )
