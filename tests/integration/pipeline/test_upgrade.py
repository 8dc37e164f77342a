"""A rolling upgrade from the one-stage layout, on a real broker: the new version
waits (ready) while an earlier version's consumer is in the group, then carries
its watermarks and waiting retries over before it delivers anything
(service/pipeline/cutover.py, legacy.py; deploy/README.md "Rolling upgrade")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import murmur2

from devkit.factories import make_event
from devkit.harness import ServiceHarness
from service.destinations.memory import MemoryDestination
from service.models import rfc3339
from service.pipeline.layout import STAGE1_CLIENT_ID
from tests.integration.pipeline.test_pipeline_e2e import connect

OLD_PARTITIONS = 3


def old_partition(org: str, lead: str) -> int:
    """Where earlier versions put a lead's marks and retries: its evaluations partition."""
    return (murmur2(f"{org}:{lead}".encode()) & 0x7FFFFFFF) % OLD_PARTITIONS


async def leave_old_layout(kafka: str, h: ServiceHarness) -> None:
    """What an earlier version left: a watermark (lead_x delivered at 12:00) and a
    retry due now (lead_y, its second attempt), partitioned by org:lead."""
    s = h.settings
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        compact = {"cleanup.policy": "compact"}
        await admin.create_topics(
            [
                NewTopic(s.topic_watermarks, OLD_PARTITIONS, 1, topic_configs=compact),
                NewTopic(s.topic_retry, OLD_PARTITIONS, 1),
            ]
        )
    finally:
        await admin.close()
    now = datetime.now(UTC)
    retry = orjson.dumps(  # the v1 envelope the earlier version wrote, the event embedded
        {
            "v": 1,
            "destination": "salesforce",
            "attempt": 2,
            "not_before": rfc3339(now),
            "first_attempt_at": rfc3339(now),
            "last_error": None,
            "event": make_event("org_1", "lead_y"),
        }
    )
    mark = {"evaluated_at": "2026-11-22T12:00:00Z", "evaluation_id": "eval_delivered"}
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(
            s.topic_watermarks,
            orjson.dumps(mark),
            b"org_1:salesforce:lead_x",
            partition=old_partition("org_1", "lead_x"),
        )
        await producer.send_and_wait(
            s.topic_retry,
            retry,
            b"org_1:lead_y",
            partition=old_partition("org_1", "lead_y"),
        )
    finally:
        await producer.stop()


async def nudge(kafka: str, group: str) -> None:
    """Tansu lists a member that left until the group rebalances (Kafka drops it at
    once): a member of this version joining and leaving makes it rebalance."""
    joiner = AIOKafkaConsumer(
        bootstrap_servers=kafka,
        group_id=group,
        client_id=STAGE1_CLIENT_ID,
        partition_assignment_strategy=(RangePartitionAssignor,),  # as stage 1's
    )
    await joiner.start()
    try:
        joiner.subscribe([f"{group}.nudge"])
        await joiner.getmany(timeout_ms=8000)
    finally:
        await joiner.stop()


async def test_the_new_version_waits_for_the_old_pods_then_takes_their_state_over(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    memory = MemoryDestination(name="salesforce")
    h = ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory})
    await leave_old_layout(kafka_bootstrap, h)
    old_pod = AIOKafkaConsumer(  # an earlier version's consumer, still in the group
        bootstrap_servers=kafka_bootstrap,
        group_id=h.settings.consumer_group,
        client_id="trailspark-destinations",
        session_timeout_ms=6000,
        enable_auto_commit=False,
        partition_assignment_strategy=(RangePartitionAssignor,),  # as earlier versions'
    )
    await old_pod.start()
    old_pod.subscribe([h.settings.topic_retry])
    await old_pod.getmany(timeout_ms=2000)
    try:
        async with h:  # ready while it waits: a rolling update goes on
            assert h.service.waiting_for_earlier and h.service.consumer is None
            await connect(h, "salesforce")
            stale = make_event("org_1", "lead_x", evaluated_at="2026-11-22T11:00:00Z")
            fresh = make_event("org_1", "lead_z")
            await h.send_event(stale)
            await h.send_event(fresh)
            await asyncio.sleep(3)
            assert h.statuses == [] and memory.writes == []  # the old pods deliver meanwhile
            await old_pod.stop()  # the last old pod leaves
            await nudge(kafka_bootstrap, h.settings.consumer_group)
            statuses = await h.wait_statuses(3, timeout=60)
    finally:
        await old_pod.stop()
    by_lead = {s["lead_id"]: s for s in statuses}
    assert (by_lead["lead_x"]["status"], by_lead["lead_x"]["reason"]) == (
        "skipped",
        "stale_evaluation",  # the old version's watermark was imported first
    )
    assert by_lead["lead_z"]["status"] == "delivered"
    assert (by_lead["lead_y"]["status"], by_lead["lead_y"]["attempts"]) == ("delivered", 2)
    assert len(memory.writes) == 2  # lead_z and lead_y's retry, nothing else
