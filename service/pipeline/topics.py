"""Topic housekeeping at start (§2): create what we write, wait for what we read."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.pipeline.layout import Layout
from service.pipeline.produce import MAX_RECORD_BYTES
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


async def ensure_topics(admin: AIOKafkaAdminClient, settings: Settings, partitions: int) -> int:
    """Create the topics this service writes to, when missing; the work topic's
    partition count (WORK_PARTITIONS, by default the evaluations topic's
    `partitions`; an existing work topic keeps its own)."""
    layout = Layout.of(settings)
    work = await partition_count(admin, layout.work) or settings.work_partitions or partitions
    rf = settings.topic_replication_factor
    # A delay tier carries a whole event (up to MAX_EVENT_BYTES) and the DLQ even an
    # oversized one: Kafka's 1 MB default would refuse them.
    tier = {"max.message.bytes": str(settings.max_event_bytes + RECORD_OVERHEAD)}
    dlq = {"max.message.bytes": str(MAX_RECORD_BYTES + RECORD_OVERHEAD)}
    wanted = [
        NewTopic(settings.topic_status, partitions, rf),
        NewTopic(settings.topic_dlq, partitions, rf, topic_configs=dlq),
        NewTopic(layout.work, work, rf, topic_configs=tier),
        *(NewTopic(topic, work, rf, topic_configs=tier) for topic in layout.tiers),
        NewTopic(layout.changelog, work, rf, topic_configs=COMPACTED),
    ]
    existing = set(await admin.list_topics())
    missing = [t for t in wanted if t.name not in existing]
    if not missing:
        return work
    try:
        response = await admin.create_topics(missing)
    except TopicAlreadyExistsError:
        return work  # another replica won the race
    for topic, code, message in getattr(response, "topic_errors", []):
        if code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"cannot create topic {topic}: {message} (error {code})")
        if code == 0:
            log.info("created topic %s", topic)
    return work


async def existing(admin: AIOKafkaAdminClient, topics: list[str]) -> list[str]:
    """Those of `topics` that exist (an upgraded deployment's old tiers)."""
    present = set(await admin.list_topics())
    return [t for t in topics if t in present]


async def misaligned(admin: AIOKafkaAdminClient, settings: Settings, partitions: int) -> list[str]:
    """Topics that must be co-partitioned with the work topic and are not.

    An org's watermarks are restored into the state store numbered like its work
    partition, and delayed work goes back to that same number: with another
    count, a store would miss its leads' marks (stale overwrites) or the writes
    to a tier would fail. Not something to run with."""
    layout = Layout.of(settings)
    problems = []
    for topic in [layout.work, layout.changelog, *layout.tiers]:
        count = await partition_count(admin, topic)
        if count is not None and count != partitions:
            problems.append(
                f"topic {topic} has {count} partitions, {layout.work} has "
                f"{partitions}: they must match (recreate {topic} with {partitions})"
            )
    return problems
