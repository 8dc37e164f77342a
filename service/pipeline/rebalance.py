"""Rebalances: hand revoked partitions back cleanly, take new ones safely.

Revoked: the consumer hands them back (drops their queued work, lets in-flight
writes finish, commits), then their state stores are closed. Assigned: the new
partitions are held until their state stores are restored from the changelog,
so nothing is written before the previous owner's last watermarks are in. A
restore that fails (a broker blip) leaves its partitions paused and `unrestored`:
the consumer retries it, and the instance is not ready meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

log = logging.getLogger(__name__)
REVOKE_DRAIN_MAX_S = 20.0  # the group waits for us; don't hold it up for long
RESTORE_RETRY_S = 2.0
HandBack = Callable[[set[TopicPartition], float], Awaitable[bool]]
Partitions = Callable[[set[int]], Awaitable[None]]


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        kafka: AIOKafkaConsumer,
        source_topic: str,
        hand_back: HandBack,
        took: Callable[[set[TopicPartition]], None],
        restore: Partitions,
        close: Callable[[set[int]], None],
        failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.kafka = kafka
        self.topic = source_topic
        self.hand_back = hand_back
        self.took = took
        self.restore = restore
        self.close = close
        self.failed = failed  # counts a failed restore
        self.unrestored: set[TopicPartition] = set()  # paused until their stores are in
        self._retry_at = 0.0
        self._restoring = asyncio.Lock()

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
        self.unrestored &= self.kafka.assignment()
        # Hold the new partitions (evaluations and tiers) until their stores are in.
        held = set(assigned) - set(self.kafka.paused())
        self.kafka.pause(*held)
        self.unrestored |= held
        log.info(
            "partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        )
        await self._restore()

    async def retry_restore(self) -> None:
        """Called by the consume loop while a restore is owed; at most every few seconds."""
        if self.unrestored and not self._restoring.locked() and monotonic() >= self._retry_at:
            await self._restore()

    async def _restore(self) -> None:
        async with self._restoring:  # the listener and the consume loop both call this
            await self._restore_owed()

    async def _restore_owed(self) -> None:
        tps = self.unrestored & self.kafka.assignment()
        self.unrestored = set(tps)
        if not tps:
            return
        try:
            await self.restore(self._numbers(tps))
        except Exception as exc:  # aiokafka would log it and resume on an empty store
            self._retry_at = monotonic() + RESTORE_RETRY_S
            self.failed()
            log.error(
                "restoring the state of partitions %s failed (%r); they stay paused, "
                "retrying in %.0fs",
                sorted(self._numbers(tps)),
                exc,
                RESTORE_RETRY_S,
            )
            return
        self.unrestored = self.unrestored - tps
        self.kafka.resume(*(tps & self.kafka.assignment()))
