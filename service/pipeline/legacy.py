"""Carries an upgraded deployment's waiting retries and watermarks into the by-org layout.

Earlier versions keyed their delay tiers (TOPIC_RETRY...) and watermarks
changelog (TOPIC_WATERMARKS) like the evaluations, by `org:lead`. Once their
pods are gone (cutover.py) those topics are final:

- Retries and deferrals still waiting in the old tiers are read by stage 1, in
  the old group (its committed offsets go on from where the old pods stopped),
  and moved to the by-org tier that fits their remaining wait (`tier_record`).
- Watermarks are imported into each work partition's store the first time it
  is restored in this layout, before any of its events is processed: the whole
  old changelog is read once, the marks of the partition's orgs are kept where
  newer, copied into its by-org changelog, and an `imported` record closes the
  import, so later restores (any pod) find them there (`LegacyMarks`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from time import monotonic

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from service.errors import InvalidEvent
from service.models import json_bytes
from service.pipeline import records
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.restore import mark_bytes
from service.pipeline.state import StateStores, decode
from service.pipeline.table import reached
from service.pipeline.tiers import TierRecord, tier_for
from service.pipeline.topics import partition_count
from service.settings import Settings
from service.tenancy import org_of_key, org_partition

log = logging.getLogger(__name__)
IMPORTED_KEY = "\x00legacy-imported"  # no watermark key starts with NUL


def tier_record(
    record: ConsumerRecord, tiers: list[str], partitions: int, dlq: str
) -> tuple[Outgoing, InvalidEvent | None]:
    """An old tier's record, unchanged, into the by-org tier that fits its remaining
    wait, at its org's partition; one this service cannot read goes to the DLQ."""
    try:
        delayed = TierRecord.read(record.value, record.headers)
        org = org_of_key(record.key)
        if org is None:
            raise ValueError("key is not {org_id}:{lead_id}")
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        error = InvalidEvent("invalid_retry_record", str(exc), "deserialize")
        return records.dead_letter(dlq, record, error), error
    wait = (delayed.not_before - datetime.now(UTC)).total_seconds()
    topic = tiers[tier_for(wait)]
    partition = org_partition(org, partitions)
    headers = tuple(record.headers or ())
    moved = Outgoing(topic, record.key, record.value, record.partition, headers, partition)
    return moved, None


class LegacyMarks:
    def __init__(
        self, settings: Settings, legacy: str, changelog: str, stores: StateStores, outbox: Outbox
    ) -> None:
        self.settings, self.legacy, self.changelog = settings, legacy, changelog
        self.stores, self.outbox = stores, outbox
        self.partitions = 0  # of the old changelog; 0: there is none, nothing to import

    async def start(self, admin: AIOKafkaAdminClient) -> None:
        self.partitions = await partition_count(admin, self.legacy) or 0

    def pending(self, partitions: set[int]) -> set[int]:
        """Work partitions whose stores have not had the old marks imported."""
        if not self.partitions:
            return set()
        parts = self.stores.parts
        return {p for p in partitions if p in parts and parts[p].get(IMPORTED_KEY) is None}

    async def import_into(self, partitions: set[int], work_partitions: int) -> None:
        todo = self.pending(partitions)
        if not todo or not work_partitions:
            return
        started, copied = monotonic(), 0
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_args(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.legacy, p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=20_000)
                for batch in batches.values():
                    copied += await self._apply(batch, todo, work_partitions)
                if not batches and await reached(consumer, ends):
                    break
        finally:
            await consumer.stop()
        done = [
            Outgoing(self.changelog, IMPORTED_KEY.encode(), _imported(), p, partition=p)
            for p in sorted(todo)
        ]
        await self._put_and_wait(done)
        log.info(
            "imported %d watermarks of %s into %s partitions %s in %.1fs",
            copied,
            self.legacy,
            self.changelog,
            sorted(todo),
            monotonic() - started,
        )

    async def _apply(self, batch: list[ConsumerRecord], todo: set[int], total: int) -> int:
        """Keep each mark of `todo`'s orgs that is newer than the store's; copy it on."""
        out: list[Outgoing] = []
        for record in batch:
            org = org_of_key(record.key)
            if org is None or record.value is None or record.key is None:
                continue
            partition = org_partition(org, total)
            if partition not in todo:
                continue
            try:
                mark = decode(mark_bytes(record.value))
            except (ValueError, KeyError, TypeError):
                continue
            key = record.key.decode(errors="replace")
            held = self.stores.get(partition, key)
            if held is None or mark[0] > held[0]:
                self.stores.put(partition, key, mark)
                out.append(
                    Outgoing(self.changelog, record.key, record.value, partition, (), partition)
                )
        if out:
            await self.outbox.put(out)
        return len(out)

    async def _put_and_wait(self, out: list[Outgoing]) -> None:
        """Everything put before, and `out`, acknowledged (callbacks run in put order)."""
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not acked.done():
                acked.set_result(None)

        await self.outbox.put(out, done)
        await acked


def _imported() -> bytes:
    """A changelog value (the restorer reads it like a mark; no lead has this key)."""
    return json_bytes({"evaluated_at": "1970-01-01T00:00:00Z", "evaluation_id": "imported"})
