"""Refused records against a real broker (issue 19, finding 8): through aiokafka's
own batches and acks, and then the real `python -m service` process with an
event too large to dead-letter as it is."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devkit.factories import make_event
from devkit.harness import create_input_topics, read_topic
from service.metrics import Metrics
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.refusals import Refusals
from tests.integration.test_process_lifecycle import (
    committed_vs_end,
    process_env,
    start,
    wait_for_ids,
)


async def create_topics(bootstrap: str, *topics: NewTopic) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(list(topics))
    finally:
        await admin.close()


def refused(metrics: Metrics, kind: str, reason: str) -> float:
    labels = {"topic_kind": kind, "reason": reason}
    name = "trailspark_destinations_produce_refused_total"
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_refused_records_do_not_hold_up_the_ones_after_them(kafka_bootstrap: str) -> None:
    prefix = f"o{uuid.uuid4().hex[:10]}"
    leads, status, small, dlq = (f"{prefix}.{n}" for n in ("leads", "status", "small", "dlq"))
    await create_topics(
        kafka_bootstrap,
        *(NewTopic(t, 3, 1) for t in (leads, status, dlq)),
        # Real Kafka refuses a 5 KB record here; Tansu does not enforce it.
        NewTopic(small, 3, 1, topic_configs={"max.message.bytes": "2000"}),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=16 * 1024,
    )
    await producer.start()
    metrics = Metrics()
    kinds = {status: "status", dlq: "dlq", small: "other"}
    refusals = Refusals(metrics, dlq_topic=dlq, kinds=kinds)
    outbox = Outbox(producer, leads, refusals, max_record_bytes=64 * 1024)
    writer = asyncio.create_task(outbox.run())
    acked: list[str] = []
    try:
        before = [Outgoing(status, b"k", b"before-%d" % i, 0) for i in range(5)]
        big = Outgoing(status, b"org_1:lead_1", b"x" * 200_000, 0, (("trace", b"t-1"),))
        after = [Outgoing(status, b"k", b"after-%d" % i, 0) for i in range(5)]
        await outbox.put([*before, big, *after], lambda: acked.append("big"))
        text = Outgoing(status, b"k", "not bytes", 0)  # type: ignore[arg-type]
        await outbox.put([text], lambda: acked.append("unencodable"))
        await outbox.put([Outgoing(small, b"k", b"y" * 5_000, 0)], lambda: acked.append("small"))
        await outbox.put([Outgoing(status, b"k", b"last", 1)], lambda: acked.append("last"))
        await asyncio.wait_for(outbox.barrier(), 60)
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await producer.stop()

    assert acked == ["big", "unencodable", "small", "last"]
    values = [r.value for r in await read_topic(kafka_bootstrap, status)]
    assert sorted(values) == sorted([r.value for r in (*before, *after)] + [b"last"])
    copies = {dict(r.headers)["error.code"]: r for r in await read_topic(kafka_bootstrap, dlq)}
    too_large = copies.pop(b"record_too_large")
    assert too_large.value is None and too_large.key == b"org_1:lead_1"
    assert dict(too_large.headers)["trace"] == b"t-1"
    assert dict(too_large.headers)["error.topic"] == status.encode()
    assert copies.pop(b"unencodable").value is None
    assert refused(metrics, "status", "record_too_large") == 1
    assert refused(metrics, "status", "unencodable") == 1
    # The 5 KB record: on its topic, or (a broker that enforces the limit) copied.
    landed = await read_topic(kafka_bootstrap, small)
    assert len(landed) + len(copies) == 1
    assert refused(metrics, "other", "record_too_large") == len(copies)


async def test_an_event_too_large_to_dead_letter_does_not_stop_its_partition(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """17 MB of bytes: an invalid event whose DLQ record is over the 16 MiB the
    outbox sends. Its copy goes to the DLQ, the events after it are delivered,
    the offsets are committed to the end and the process stays healthy."""
    env = process_env(kafka_bootstrap, tmp_path)
    await create_input_topics(kafka_bootstrap, env, partitions=1)
    log = tmp_path / "service.log"
    proc = start(env, log)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        enable_idempotence=False,
        max_request_size=32 * 1024 * 1024,
    )
    await producer.start()
    events = [make_event() for _ in range(3)]
    try:
        topic = env["TOPIC_EVALUATIONS"]
        await producer.send_and_wait(topic, orjson.dumps(events[0]), b"org_1:a")
        await producer.send_and_wait(topic, b"x" * (17 * 1024 * 1024), b"org_1:big")
        for event in events[1:]:
            await producer.send_and_wait(topic, orjson.dumps(event), b"org_1:a")
        ids = await wait_for_ids(kafka_bootstrap, env, 3, 90)
        assert ids == {e["event_id"] for e in events}
        dlq = await read_topic(kafka_bootstrap, env["TOPIC_DLQ"])
        url = f"http://127.0.0.1:{env['HTTP_PORT']}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as r:
                healthy = r.status
            async with http.get(f"{url}/metrics") as r:
                metrics = await r.text()
        for _ in range(50):  # the commit follows the acks
            committed, ends = await committed_vs_end(kafka_bootstrap, env)
            if committed == ends:
                break
            await asyncio.sleep(0.2)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        await producer.stop()
        proc.kill()
    assert code == 0 and healthy == 200
    assert committed == ends == {0: 4}
    [copy] = dlq
    headers = dict(copy.headers)
    assert copy.value is None and copy.key == b"org_1:big"
    assert headers["error.code"] == b"record_too_large" and headers["source.offset"] == b"1"
    assert b"event_too_large" in headers["error.message"]
    assert (
        'trailspark_destinations_produce_refused_total{reason="record_too_large",topic_kind="dlq"}'
        " 1.0" in metrics
    )
    lines = [line for line in log.read_text().splitlines() if "cannot be written to Kafka" in line]
    assert len(lines) == 1 and "xxxxxxxx" not in log.read_text()
