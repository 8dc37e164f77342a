"""Rebalances: hand revoked partitions back cleanly, take new ones safely.

Revoked: the consumer hands them back (drops their queued work, lets in-flight
writes finish, commits), then their state stores are closed. Assigned: the new
partitions are held until their state stores are restored from the changelog,
so nothing is written before the previous owner's last watermarks are in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

log = logging.getLogger(__name__)
REVOKE_DRAIN_MAX_S = 20.0  # the group waits for us; don't hold it up for long
HandBack = Callable[[set[TopicPartition], float], Awaitable[bool]]
Partitions = Callable[[set[int]], Awaitable[None]]


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        kafka: AIOKafkaConsumer,
        lead_topic: str,
        hand_back: HandBack,
        took: Callable[[set[TopicPartition]], None],
        restore: Partitions,
        close: Callable[[set[int]], None],
    ) -> None:
        self.kafka = kafka
        self.topic = lead_topic
        self.hand_back = hand_back
        self.took = took
        self.restore = restore
        self.close = close

    def _numbers(self, tps: set[TopicPartition]) -> set[int]:
        """Partition numbers, which number the co-partitioned state stores too."""
        return {tp.partition for tp in tps}

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        revoked = set(revoked)
        if revoked:
            await self.hand_back(revoked, REVOKE_DRAIN_MAX_S)
            kept = self._numbers(self.kafka.assignment() - revoked)
            self.close(self._numbers(revoked) - kept)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.took(set(assigned))
        # Hold the new partitions (evaluations and tiers) until their stores are in.
        held = set(assigned) - set(self.kafka.paused())
        self.kafka.pause(*held)
        try:
            await self.restore(self._numbers(set(assigned)))
        finally:
            self.kafka.resume(*(held & self.kafka.assignment()))
        log.info(
            "partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )
