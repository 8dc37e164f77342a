"""Throughput: the service vs a raw aiokafka loop over the same events, one run.

    python -m bench.micro.service_vs_aiokafka [--events 20000]

Both read the same pre-produced events from the same broker. The baseline is
the floor any consumer pays: consume, produce one status-sized record per
event, commit. The service does everything it does in production (parse,
validate, config join, lanes, batching, stale check, status + watermark, offset
tracking) with the in-memory destination. Prints both rates and the ratio.
Both sides share the interpreter, tuned as `python -m service` tunes it, and the
consumer's fetch_max_wait_ms, so the ratio compares the work alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devkit.broker import local_broker
from devkit.factories import make_config, make_event
from devkit.harness import create_input_topics, topic_env
from service.app import Service
from service.destinations.memory import MemoryDestination
from service.metrics import Metrics
from service.pipeline.consumer import FETCH_MAX_WAIT_MS
from service.runtime import tune_gc
from service.settings import Settings

STATUS_SIZED = orjson.dumps(
    {"schema_version": 1, "event_id": "x" * 36, "status": "delivered", "pad": "y" * 300}
)


async def produce_events(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        for i in range(n):
            event = make_event("org_bench", f"lead_{i}")
            await producer.send(topic, orjson.dumps(event), f"org_bench:lead_{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def baseline(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"baseline-{os.urandom(4).hex()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The service's own setting (service/pipeline/consumer.py). With aiokafka's
        # 500 ms default, a fetch long-polling partitions that are already read
        # delays the last fetch of the others by up to half a second.
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        seen, started, futures = 0, time.perf_counter(), []
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=100, max_records=2000)).values():
                for record in records:
                    futures.append(
                        await producer.send(f"{topic}.baseline-status", STATUS_SIZED, record.key)
                    )
                    seen += 1
            await asyncio.gather(*futures)
            futures.clear()
            await consumer.commit()
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


async def service_rate(bootstrap: str, env: dict[str, str], n: int) -> float:
    secrets = Path(tempfile.mkdtemp())
    (secrets / "org_bench-salesforce.json").write_bytes(b'{"access_token": "bench-token-0000"}')
    configs = secrets / "configs.json"
    configs.write_bytes(orjson.dumps([make_config("salesforce", "org_bench")]))
    settings = Settings.from_env(
        {
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SECRETS_DIR": str(secrets),
            "CONFIG_FILE": str(configs),
            "HTTP_PORT": "0",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
        }
    )
    metrics = Metrics()
    service = Service(settings, metrics=metrics, destinations={"salesforce": MemoryDestination()})
    run = asyncio.create_task(service.run())
    try:
        while not service.ready()[0]:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        sample = metrics.registry.get_sample_value
        labels = {"destination": "salesforce", "status": "delivered"}
        while (sample("trailspark_destinations_deliveries_total", labels) or 0) < n:
            await asyncio.sleep(0.005)
        # Delivered = status enqueued; also wait for every offset to be settled.
        while service.offsets.pending():
            await asyncio.sleep(0.005)
        return n / (time.perf_counter() - started)
    finally:
        service.stop()
        await run


async def main(n: int, rounds: int) -> None:
    """Rounds alternate baseline and service, each on fresh topics, so that a noisy
    neighbour hits both alike; the ratio is the median of the per-round ratios."""
    tune_gc()  # as `python -m service` does; one interpreter, so both sides get it
    ratios = []
    with local_broker() as bootstrap:
        for i in range(rounds):
            env = topic_env(f"bench{os.urandom(4).hex()}")
            await create_input_topics(bootstrap, env, partitions=6)
            await produce_events(bootstrap, env["TOPIC_EVALUATIONS"], n)
            base = await baseline(bootstrap, env["TOPIC_EVALUATIONS"], n)
            svc = await service_rate(bootstrap, env, n)
            ratios.append(svc / base)
            print(
                f"round {i + 1}: baseline {base:8.0f} ev/s   "
                f"service {svc:8.0f} ev/s   ratio {svc / base:.2f}"
            )
    print(f"events per round  {n}")
    print(f"ratio = service / baseline = {statistics.median(ratios):.2f} (median)   (goal >= 0.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds))
