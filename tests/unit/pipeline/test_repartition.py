"""Stage 1 without a broker: which partition an org goes to, what goes to the DLQ,
and that a source offset is committed only once what it produced was acked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from devkit.factories import make_event
from service.metrics import Metrics
from service.models import rfc3339
from service.pipeline.cutover import earlier_members
from service.pipeline.layout import STAGE1_CLIENT_ID, Layout, stage2_settings
from service.pipeline.outbox import Outbox
from service.pipeline.repartition import Forward, Repartitioner
from service.settings import Settings
from service.tenancy import org_of_key, org_partition
from tests.fakes import FakeProducer

SETTINGS = Settings(bootstrap_servers="unused:9092")
LAYOUT = Layout.of(SETTINGS)
EVALUATIONS = SETTINGS.topic_evaluations
# Kafka's own murmur2 test vectors (clients/.../utils/UtilsTest.java): the Java
# client puts the key in toPositive(murmur2(key)) % partitions.
JAVA_MURMUR2 = {"21": -973932308, "foobar": -790332482, "abc": 479470107}


def record(
    value: bytes | None,
    offset: int = 0,
    *,
    topic: str = EVALUATIONS,
    partition: int = 0,
    key: bytes | None = b"org_1:lead_1",
    headers: tuple[tuple[str, bytes], ...] = (),
) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, 0, headers)


def test_an_org_goes_where_the_java_client_would_put_its_key() -> None:
    for org, java_hash in JAVA_MURMUR2.items():
        for partitions in (1, 6, 12, 64):
            assert org_partition(org, partitions) == (java_hash & 0x7FFFFFFF) % partitions
    assert org_of_key(b"org_1:lead:x") == "org_1"
    assert org_of_key(b"no-colon") is None and org_of_key(None) is None


def test_a_valid_event_goes_unchanged_to_its_orgs_work_partition() -> None:
    forward = Forward(SETTINGS, Metrics(), work_partitions=12)
    value = orjson.dumps(make_event("org_42", "lead_7"))
    out = forward(record(value, 5, partition=3, headers=(("trace", b"t1"),)))
    assert out.topic == LAYOUT.work == SETTINGS.topic_work
    assert (out.key, out.value, out.headers) == (b"org_42", value, (("trace", b"t1"),))
    assert out.partition == org_partition("org_42", 12)
    assert out.source_partition == 3


def test_an_invalid_event_goes_to_the_dlq_with_the_contracts_headers() -> None:
    metrics = Metrics()
    forward = Forward(SETTINGS, metrics, work_partitions=12)
    out = forward(record(b"{not json", 9, partition=2, headers=(("trace", b"t9"),)))
    headers = {k: v.decode() for k, v in out.headers}
    assert out.topic == SETTINGS.topic_dlq and out.value == b"{not json"
    assert out.key == b"org_1:lead_1" and out.partition is None  # the DLQ keeps the source's
    assert headers["trace"] == "t9" and headers["error.code"] == "invalid_json"
    assert headers["source.topic"] == EVALUATIONS
    assert (headers["source.partition"], headers["source.offset"]) == ("2", "9")
    sample = metrics.registry.get_sample_value
    assert sample("trailspark_destinations_events_invalid_total", {"reason": "invalid_json"}) == 1
    assert sample("trailspark_destinations_events_consumed_total") == 1  # stage 2 counts valid


def test_a_retry_waiting_in_an_old_tier_moves_to_the_by_org_tier_that_fits() -> None:
    forward = Forward(SETTINGS, Metrics(), work_partitions=12)
    now = datetime.now(UTC)
    event = orjson.dumps(make_event("org_9", "lead_3"))
    waiting = orjson.dumps(  # the v1 envelope an earlier version wrote (the event embedded)
        {
            "v": 1,
            "destination": "hubspot",
            "attempt": 3,
            "not_before": rfc3339(now + timedelta(seconds=200)),
            "first_attempt_at": rfc3339(now),
            "last_error": None,
            "event": orjson.Fragment(event),
        }
    )
    old_tier = LAYOUT.legacy_tiers[4]  # the 10-minute tier, partitioned by org:lead
    out = forward(record(waiting, topic=old_tier, partition=5, key=b"org_9:lead_3"))
    assert out.topic == LAYOUT.tiers[3]  # 200 s to go: the 2-minute by-org tier
    assert out.topic == stage2_settings(SETTINGS).topic_retry + ".2m"
    assert (out.key, out.value, out.partition) == (
        b"org_9:lead_3",
        waiting,
        org_partition("org_9", 12),
    )
    unreadable = forward(record(b"garbage", topic=old_tier))
    assert unreadable.topic == SETTINGS.topic_dlq


class HeldAcks(FakeProducer):
    """Takes batches at once and acknowledges them when told to."""

    def __init__(self) -> None:
        super().__init__(partitions=12)
        self.pending: list[asyncio.Future[None]] = []

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.items))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def ack_all(self) -> None:
        for future in self.pending:
            if not future.done():
                future.set_result(None)


class FakeKafka:
    def __init__(self, tps: set[TopicPartition]) -> None:
        self.tps = tps
        self.committed: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.tps

    async def commit(self, points: dict[TopicPartition, int]) -> None:
        self.committed.update(points)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


async def test_a_source_offset_is_committed_only_after_the_acks_and_order_is_kept() -> None:
    tp = TopicPartition(EVALUATIONS, 0)
    producer, kafka = HeldAcks(), FakeKafka({tp})
    outbox = Outbox(producer, EVALUATIONS)
    writer = asyncio.create_task(outbox.run())
    stage1 = Repartitioner(
        SETTINGS,
        Metrics(),
        outbox,
        Forward(SETTINGS, Metrics(), 12),
        kafka=kafka,  # type: ignore[arg-type]
    )
    events = [make_event("org_a", f"lead_{i}") for i in range(5)]
    try:
        await stage1.take(tp, [record(orjson.dumps(e), i) for i, e in enumerate(events[:3])])
        await stage1.take(tp, [record(b"{", 3), record(orjson.dumps(events[3]), 4)])
        await asyncio.sleep(0.05)  # sent, not acknowledged
        await stage1.commit()
        assert kafka.committed.get(tp, 0) == 0  # nothing past an unacknowledged record
        producer.ack_all()
        await asyncio.wait_for(outbox.barrier(), 5)
        await stage1.commit()
        assert kafka.committed == {tp: 5}
    finally:
        writer.cancel()
    work = [items for topic, _, items in producer.sent if topic == SETTINGS.topic_work]
    written = [orjson.loads(value)["lead"]["lead_id"] for items in work for _, value, _ in items]
    assert written == ["lead_0", "lead_1", "lead_2", "lead_3"]  # one partition, in order
    assert {p for topic, p, _ in producer.sent if topic == SETTINGS.topic_work} == {
        org_partition("org_a", 12)
    }


def test_members_of_an_earlier_version_are_told_apart_from_stage_1() -> None:
    ours = (f"{STAGE1_CLIENT_ID}-1a2b", STAGE1_CLIENT_ID, "/10.0.0.1", b"", b"")
    tansu_ours = (f"{STAGE1_CLIENT_ID}-3c4d", "", "", b"", b"")  # no client id reported
    old = ("trailspark-destinations-5e6f", "trailspark-destinations", "/10.0.0.2", b"", b"")
    old_static = ("pod-0-7a8b", "trailspark-destinations", "/10.0.0.3", b"", b"")
    group = (0, "g", "Stable", "consumer", "range", [ours, tansu_ours, old, old_static])
    assert earlier_members([group]) == ["trailspark-destinations-5e6f", "pod-0-7a8b"]
    assert earlier_members([(0, "g", "Empty", "", "", [])]) == []
