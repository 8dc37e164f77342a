"""Everything the service writes to Kafka: statuses, retries, DLQ, watermarks.

One producer. aiokafka batches sends on its own, so callers enqueue with
`send` and await the returned future only where durability matters (before an
offset may be committed). No idempotent producer: at-least-once is the
contract, and consumers dedupe on (event_id, destination).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from service.errors import InvalidEvent
from service.settings import Settings

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    route_key: bytes  # the lead's `org:lead` key
    source_partition: int  # partition of the record that caused it


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(
            **settings.kafka_client_args(),
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=16 * 1024 * 1024,  # the DLQ carries oversized events unchanged
        )

        self._counts: dict[str, int] = {}

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()  # flushes what is buffered

    async def send_many(self, records: Sequence[Outgoing]) -> list[asyncio.Future[object]]:
        """The hot path: whole record batches per partition instead of one `send` per
        record. A record goes to its source record's partition number when its topic
        has as many partitions as the evaluations topic (the topics this service
        creates do): a lead's statuses, retries and watermarks are co-partitioned
        with its events, whatever partitioner the producers upstream use. Otherwise
        `route_key` is hashed like Kafka's Java client does (murmur2)."""
        lead_partitions = self._counts.get(self.settings.topic_evaluations) or await self._count(
            self.settings.topic_evaluations
        )
        groups: dict[tuple[str, int], list[Outgoing]] = {}
        for record in records:
            count = self._counts.get(record.topic) or await self._count(record.topic)
            if count == lead_partitions:
                partition = record.source_partition
            else:
                partition = (murmur2(record.route_key) & 0x7FFFFFFF) % count
            groups.setdefault((record.topic, partition), []).append(record)
        futures = []
        for (topic, partition), items in groups.items():
            batch = self.producer.create_batch()
            for item in items:
                if batch.append(key=item.key, value=item.value, timestamp=None) is None:
                    futures.append(
                        await self.producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = self.producer.create_batch()
                    batch.append(key=item.key, value=item.value, timestamp=None)
            futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _count(self, topic: str) -> int:
        self._counts[topic] = len(await self.producer.partitions_for(topic))
        return self._counts[topic]

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers = ()
    ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self.producer.send(
            topic, value=value, key=key, headers=list(headers)
        )
        return future

    def status(self, key: bytes, value: bytes, source: int) -> Outgoing:
        return Outgoing(self.settings.topic_status, key, value, key, source)

    def retry(self, key: bytes, value: bytes, source: int) -> Outgoing:
        return Outgoing(self.settings.topic_retry, key, value, key, source)

    def watermark(self, lead_key: str, evaluated_at: str, key: bytes, source: int) -> Outgoing:
        value = orjson.dumps({"evaluated_at": evaluated_at})
        return Outgoing(self.settings.topic_watermarks, lead_key.encode(), value, key, source)

    async def dead_letter(
        self, record: ConsumerRecord, error: InvalidEvent
    ) -> asyncio.Future[object]:
        """The original key, value and headers, plus what went wrong and where from (§6)."""
        extra = {
            "error.code": error.code,
            "error.message": error.message[:1000],
            "error.stage": error.stage,
            "source.topic": record.topic,
            "source.partition": str(record.partition),
            "source.offset": str(record.offset),
        }
        headers = [*(record.headers or ()), *((k, v.encode()) for k, v in extra.items())]
        return await self._send(self.settings.topic_dlq, record.key, record.value, headers)
