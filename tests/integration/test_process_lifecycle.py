"""The service as a process: SIGTERM drains and commits, kill -9 loses nothing,
/readyz waits for the config topic, and memory stays bounded (contract §5-§7)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devkit.broker import free_port
from devkit.factories import make_config, make_event
from devkit.harness import FAST, ServiceHarness, create_input_topics, read_topic, topic_env
from service.app import Service
from service.destinations.memory import MemoryDestination
from service.settings import Settings

SECRET = {"access_token": "tok-" + "s" * 24}


def process_env(bootstrap: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "org_1-salesforce.json").write_bytes(orjson.dumps(SECRET))
    configs = tmp_path / "configs.json"
    configs.write_bytes(orjson.dumps([make_config("salesforce")]))
    return {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SECRETS_DIR": str(secrets),
        "CONFIG_FILE": str(configs),
        **FAST,
        "HTTP_PORT": str(free_port()),
        **topic_env(f"p{os.urandom(5).hex()}"),
        **extra,
    }


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.memory_service"], env=env, stderr=out
        )


async def produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            key = f"{event['org_id']}:{event['lead']['lead_id']}".encode()
            await producer.send(topic, orjson.dumps(event), key)
        await producer.flush()
    finally:
        await producer.stop()


async def terminal_ids(bootstrap: str, env: dict[str, str]) -> set[str]:
    records = await read_topic(bootstrap, env["TOPIC_STATUS"])
    statuses = [orjson.loads(r.value) for r in records]
    return {s["event_id"] for s in statuses if s["status"] != "retrying"}


async def wait_for_ids(bootstrap: str, env: dict[str, str], n: int, timeout: float) -> set[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(ids := await terminal_ids(bootstrap, env)) < n:
        assert loop.time() < deadline, f"only {len(ids)} of {n} statuses"
        await asyncio.sleep(0.5)
    return ids


async def committed_vs_end(
    bootstrap: str, env: dict[str, str]
) -> tuple[dict[int, int | None], dict[int, int]]:
    """Committed offsets of the service's group, and each partition's end (read, not
    asked: Tansu under-reports ListOffsets)."""
    ends: dict[int, int] = {}
    for record in await read_topic(bootstrap, env["TOPIC_EVALUATIONS"]):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=env["KAFKA_CONSUMER_GROUP"])
    await consumer.start()
    try:
        tps = [TopicPartition(env["TOPIC_EVALUATIONS"], p) for p in ends]
        return {tp.partition: await consumer.committed(tp) for tp in tps}, ends
    finally:
        await consumer.stop()


async def test_sigterm_exits_0_with_everything_committed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = process_env(
        kafka_bootstrap, tmp_path, COMMIT_INTERVAL_MS="600000"
    )  # only the final commit
    await create_input_topics(kafka_bootstrap, env)
    proc = start(env, tmp_path / "service.log")
    try:
        events = [make_event() for _ in range(200)]
        await produce(kafka_bootstrap, env["TOPIC_EVALUATIONS"], events)
        ids = await wait_for_ids(kafka_bootstrap, env, 200, 60)
        assert ids == {e["event_id"] for e in events}
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 25)
    finally:
        proc.kill()
    assert code == 0, (tmp_path / "service.log").read_text()[-2000:]
    committed, ends = await committed_vs_end(kafka_bootstrap, env)
    assert committed == ends and sum(ends.values()) == 200


async def test_kill_9_mid_stream_then_restart_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = process_env(kafka_bootstrap, tmp_path, MEMORY_DELAY_S="0.2")  # ~4 s of work
    await create_input_topics(kafka_bootstrap, env)
    log = tmp_path / "service.log"
    proc = start(env, log)
    events = [make_event(lead_id=f"lead_{i}") for i in range(400)]
    try:
        await produce(kafka_bootstrap, env["TOPIC_EVALUATIONS"], events)
        await wait_for_ids(kafka_bootstrap, env, 40, 60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    partial = await terminal_ids(kafka_bootstrap, env)
    assert 40 <= len(partial) < 400  # killed mid-stream
    proc = start(env, log)
    try:
        ids = await wait_for_ids(kafka_bootstrap, env, 400, 90)
    finally:
        proc.terminate()
        proc.wait(30)
    assert ids == {e["event_id"] for e in events}


async def test_readyz_waits_for_topics_and_config_catch_up(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SECRETS_DIR": str(tmp_path),
        **FAST,
        **topic_env(f"r{os.urandom(5).hex()}"),
    }
    settings = Settings.from_env(env)
    service = Service(settings, destinations={"salesforce": MemoryDestination()})
    run = asyncio.create_task(service.run())

    async def readyz() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{service.http.port}/readyz") as resp,
        ):
            return resp.status

    try:
        await asyncio.sleep(2)  # no topics at all: waiting, not crashing
        assert not run.done() and service.http.port and await readyz() == 503
        await create_input_topics(kafka_bootstrap, env)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        for org in range(300):
            config = make_config("salesforce", f"org_{org}")
            await producer.send(
                settings.topic_configs, orjson.dumps(config), f"org_{org}:salesforce".encode()
            )
        await producer.stop()
        while await readyz() != 200:
            assert not run.done()
            await asyncio.sleep(0.02)
        assert len(service.store) == 300  # ready only once the config topic was read
    finally:
        service.stop()
        await asyncio.wait_for(run, 30)


async def test_a_slow_lane_holds_its_window_and_defers_the_rest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A slow destination keeps at most its window in memory (LANE_CAPACITY caps
    it); the rest is deferred to Kafka, the source offsets move on, and every
    event is delivered in the end without spending an attempt."""
    memory = MemoryDestination(name="salesforce", delay_s=0.05, max_batch_size=10)
    env = {"LANE_CAPACITY": "20", "MAX_INFLIGHT": "40"}
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": memory}, env=env
    ) as h:
        h.write_secret("org_1-salesforce", SECRET)
        await h.put_config(make_config("salesforce"))
        await produce(
            kafka_bootstrap, h.settings.topic_evaluations, [make_event() for _ in range(300)]
        )
        peak, gauge_peak = 0, 0.0
        while len(await h.wait_statuses(0)) < 300:
            peak = max(peak, h.service.consumer.offsets.pending())  # type: ignore[union-attr]
            gauge = h.metric("inflight_deliveries", destination="salesforce")
            gauge_peak = max(gauge_peak, gauge)
            await asyncio.sleep(0.005)
        settled = h.metric("inflight_deliveries", destination="salesforce")
        deferred = h.metric("deferrals_total", destination="salesforce")
    assert peak <= 40, peak
    assert 10 <= gauge_peak <= 30, gauge_peak  # the window (20) plus the batch being written
    assert deferred > 0 and settled == 0
    assert {(s["status"], s["attempts"]) for s in h.statuses} == {("delivered", 1)}


async def test_long_full_stop_pauses_then_resumes(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """At MAX_INFLIGHT every partition is held back; past ROOM_WAIT_MAX_S (shortened
    here) the consumer pauses them and keeps polling, then resumes them all."""
    monkeypatch.setattr("service.pipeline.consumer.ROOM_WAIT_MAX_S", 0.2)
    memory = MemoryDestination(name="salesforce", delay_s=0.3, max_batch_size=10)
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": memory}, env={"MAX_INFLIGHT": "10"}
    ) as h:
        h.write_secret("org_1-salesforce", SECRET)
        await h.put_config(make_config("salesforce"))
        await produce(
            kafka_bootstrap, h.settings.topic_evaluations, [make_event() for _ in range(60)]
        )
        consumer = h.service.consumer
        assert consumer is not None
        paused_all, peak = False, 0
        while len(await h.wait_statuses(0)) < 60:
            peak = max(peak, consumer.offsets.pending())
            paused_all = paused_all or consumer.paused == consumer.kafka.assignment()
            await asyncio.sleep(0.01)
        await h.wait_until(lambda: not consumer.paused, 5, "partitions resumed")
    assert paused_all, "a long full stop should pause every partition"
    assert peak <= 10, peak
    assert [s["status"] for s in h.statuses] == ["delivered"] * 60


async def test_a_watermarks_topic_not_co_partitioned_stops_the_start_with_exit_2(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """State stores are numbered by the work topic's partitions (an org's): a
    watermarks changelog with another count would restore marks into the wrong
    stores (stale overwrites)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    env = process_env(kafka_bootstrap, tmp_path)
    await create_input_topics(kafka_bootstrap, env, partitions=3)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        changelog = env["TOPIC_WATERMARKS"] + ".by-org"  # service/pipeline/layout.py
        await admin.create_topics([NewTopic(changelog, 2, 1)])
    finally:
        await admin.close()
    log = tmp_path / "service.log"
    process = start(env, log)
    code = await asyncio.to_thread(process.wait, 60)
    assert code == 2
    assert f"topic {changelog} has 2 partitions" in log.read_text()
