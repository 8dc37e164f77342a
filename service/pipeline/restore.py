"""Restores the watermark stores of newly assigned partitions from the changelog.

The compacted watermarks topic is co-partitioned with the evaluations: store p
is restored from changelog partition p, from the offset the store recorded, to
the partition's end. Until then the partition's events wait (rebalance.py), so
nothing is written before the previous owner's last watermarks are in.
"""

from __future__ import annotations

import logging
from datetime import datetime
from time import monotonic

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from service.models import epoch_us
from service.pipeline.state import StateStores, encode
from service.pipeline.table import reached
from service.settings import Settings

log = logging.getLogger(__name__)


def mark_bytes(value: bytes) -> bytes:
    """A changelog value (JSON) as a store value."""
    data = orjson.loads(value)
    evaluated_at = epoch_us(datetime.fromisoformat(data["evaluated_at"]))
    written = data.get("written", True) is not False  # attempted marks say false
    return encode((evaluated_at, str(data.get("evaluation_id") or ""), written))


class Restorer:
    def __init__(self, settings: Settings, stores: StateStores) -> None:
        self.topic = settings.topic_watermarks
        self.stores = stores
        self.restored = 0  # changelog records applied since start
        self.busy = False  # restoring: not ready
        self.consumer = AIOKafkaConsumer(
            **settings.kafka_client_args(),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=25,  # the rebalance waits for the last, empty fetch
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def restore(self, partitions: set[int]) -> None:
        if not partitions:
            return
        self.busy = True
        try:
            await self._restore(partitions)
        finally:
            self.busy = False

    async def _restore(self, partitions: set[int]) -> None:
        started, before = monotonic(), self.restored
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        stores = {p: self.stores.open(p) for p in partitions}
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, stores[tp.partition].offset)
        ends = await self.consumer.end_offsets(tps)
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=20_000)
            for tp, records in batches.items():
                changes = []
                for record in records:
                    if record.key is None:
                        continue
                    try:
                        value = mark_bytes(record.value) if record.value is not None else None
                    except (ValueError, KeyError, TypeError):
                        log.warning("unreadable watermark at %s@%d skipped", tp, record.offset)
                        continue
                    changes.append((record.key, value))
                stores[tp.partition].apply(changes, records[-1].offset + 1)
                self.restored += len(records)
            if not batches and await reached(self.consumer, ends):
                break
        self.consumer.unsubscribe()
        log.info(
            "restored watermark partitions %s: %d records in %.2fs",
            sorted(partitions),
            self.restored - before,
            monotonic() - started,
        )
