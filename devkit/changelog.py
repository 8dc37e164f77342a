"""A watermarks changelog filled in bulk: the state a long-running service
leaves behind, for restore tests and the memory benchmark. Laid out as this
version writes it (`{TOPIC_WATERMARKS}.by-org`): each org's marks in its work
partition (service/tenancy.py)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from service.tenancy import org_partition

BULK_MARK = {"evaluated_at": "2026-11-01T00:00:00Z", "evaluation_id": "eval_x"}
BULK_ORGS = 1_000


async def fill_watermarks(
    kafka: str,
    topic: str,
    n: int,
    partitions: int = 6,
    extra: Iterable[tuple[bytes, bytes, int]] = (),
) -> None:
    """Create the compacted topic, then `n` marks of BULK_ORGS orgs of their own,
    each org's in its partition, then the `extra` (key, value, partition) records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        compact = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=compact)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, linger_ms=50, max_batch_size=1 << 20, enable_idempotence=False
    )
    await producer.start()
    try:
        value = orjson.dumps(BULK_MARK)
        for i in range(n):
            org = f"org_bulk{i % BULK_ORGS}"
            key = f"{org}:salesforce:lead_{i}".encode()
            await producer.send(topic, value, key, partition=org_partition(org, partitions))
        for key, value, partition in extra:
            await producer.send(topic, value, key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
