"""Everything the service writes to Kafka: statuses, retries, DLQ, watermarks.

One producer. aiokafka batches sends on its own, so callers enqueue with
`send` and await the returned future only where durability matters (before an
offset may be committed). No idempotent producer: at-least-once is the
contract, and consumers dedupe on (event_id, destination).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from service.errors import InvalidEvent
from service.models import DeliveryStatus
from service.settings import Settings

Headers = Sequence[tuple[str, bytes]]


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

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()  # flushes what is buffered

    async def _send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers = ()
    ) -> asyncio.Future[object]:
        return await self.producer.send(topic, value=value, key=key, headers=list(headers))

    async def status(self, status: DeliveryStatus) -> asyncio.Future[object]:
        key = f"{status.org_id}:{status.lead_id}".encode()
        return await self._send(self.settings.topic_status, key, status.to_json())

    async def retry(self, key: bytes | None, value: bytes) -> asyncio.Future[object]:
        return await self._send(self.settings.topic_retry, key, value)

    async def watermark(self, key: str, evaluated_at: str) -> asyncio.Future[object]:
        value = orjson.dumps({"evaluated_at": evaluated_at})
        return await self._send(self.settings.topic_watermarks, key.encode(), value)

    async def dead_letter(self, record: ConsumerRecord, error: InvalidEvent) -> asyncio.Future[object]:
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
