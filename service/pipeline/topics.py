"""Topic housekeeping at start (§2): create what we write, wait for what we read."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.pipeline.produce import MAX_RECORD_BYTES
from service.pipeline.retry import tier_topics
from service.settings import Settings

log = logging.getLogger(__name__)
COMPACTED = {"cleanup.policy": "compact"}
RECORD_OVERHEAD = 64 * 1024  # headers and batch framing around an event's bytes


async def partition_count(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    # Asking for a named topic's metadata may auto-create it, so list all first.
    if topic not in await admin.list_topics():
        return None
    described = await admin.describe_topics([topic])
    for item in described:
        if item.get("topic") == topic and item.get("error_code", 0) == 0:
            return len(item.get("partitions", [])) or None
    return None


async def wait_for_topic(admin: AIOKafkaAdminClient, topic: str, every_s: float = 2.0) -> int:
    """Partition count of `topic`, waiting (not crashing) while it is missing."""
    waited = 0.0
    while True:
        count = await partition_count(admin, topic)
        if count:
            return count
        if waited % 30 == 0:
            log.warning("topic %s does not exist yet; not ready, waiting for it", topic)
        await asyncio.sleep(every_s)
        waited += every_s


async def ensure_topics(admin: AIOKafkaAdminClient, settings: Settings, partitions: int) -> None:
    """Create the topics this service writes to, when missing."""
    rf = settings.topic_replication_factor
    # A delay tier carries a whole event (up to MAX_EVENT_BYTES) and the DLQ even an
    # oversized one: Kafka's 1 MB default would refuse them.
    tier = {"max.message.bytes": str(settings.max_event_bytes + RECORD_OVERHEAD)}
    dlq = {"max.message.bytes": str(MAX_RECORD_BYTES + RECORD_OVERHEAD)}
    wanted = [
        NewTopic(settings.topic_status, partitions, rf),
        *(
            NewTopic(topic, partitions, rf, topic_configs=tier)
            for topic in tier_topics(settings.topic_retry)
        ),
        NewTopic(settings.topic_dlq, partitions, rf, topic_configs=dlq),
        NewTopic(
            settings.topic_watermarks,
            partitions,
            rf,
            topic_configs=COMPACTED,
        ),
    ]
    existing = set(await admin.list_topics())
    missing = [t for t in wanted if t.name not in existing]
    if not missing:
        return
    try:
        response = await admin.create_topics(missing)
    except TopicAlreadyExistsError:
        return  # another replica won the race
    for topic, code, message in getattr(response, "topic_errors", []):
        if code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"cannot create topic {topic}: {message} (error {code})")
        if code == 0:
            log.info("created topic %s with %d partitions", topic, partitions)


async def misaligned(admin: AIOKafkaAdminClient, settings: Settings, partitions: int) -> list[str]:
    """Topics that must be co-partitioned with the evaluations topic and are not.

    A lead's watermarks are restored into the state store numbered like its
    evaluations' partition, and delayed work goes back to that same number: with
    another count, a store would miss its leads' marks (stale overwrites) or the
    writes to a tier would fail. Not something to run with."""
    wanted = [settings.topic_watermarks, *tier_topics(settings.topic_retry)]
    problems = []
    for topic in wanted:
        count = await partition_count(admin, topic)
        if count is not None and count != partitions:
            problems.append(
                f"topic {topic} has {count} partitions, {settings.topic_evaluations} has "
                f"{partitions}: they must match (recreate {topic} with {partitions})"
            )
    return problems
