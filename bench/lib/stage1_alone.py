"""The extra stage alone: stage 1 (service/pipeline/repartition.py) in a process of
its own, over evaluations already in the topic, until it has forwarded `n`.

    python -m bench.lib.stage1_alone N     (KAFKA_* and TOPIC_* from the environment)

Prints one JSON line: events forwarded, CPU seconds (user + system) and wall
seconds from its first forwarded record (the group joined) to the last
acknowledgement. What one event costs here is
what the two-stage layout adds to a single instance: a decode, a produce and a
fetch more per event (stage 2 decodes as the one-stage service did).
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from service import runtime
from service.metrics import Metrics
from service.pipeline.outbox import Outbox
from service.pipeline.repartition import Forward, Repartitioner
from service.pipeline.topics import ensure_topics, wait_for_topic
from service.settings import Settings


async def forward_all(n: int) -> dict[str, float]:
    settings = Settings.kafka_from_env()
    admin = AIOKafkaAdminClient(**settings.kafka_client_args())
    await admin.start()
    partitions = await wait_for_topic(admin, settings.topic_evaluations)
    work_partitions = await ensure_topics(admin, settings, partitions)
    await admin.close()
    producer = AIOKafkaProducer(  # as the service's (service/app.py)
        **settings.kafka_client_args(),
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    metrics, stopping = Metrics(), asyncio.Event()
    outbox = Outbox(producer, settings.topic_evaluations)
    forward = Forward(settings, metrics, work_partitions)
    stage1 = Repartitioner(settings, metrics, outbox, forward)
    writer = asyncio.create_task(outbox.run())
    running = asyncio.create_task(stage1.run(stopping))
    forwarded = "trailspark_destinations_repartitioned_total"

    def done() -> float:
        return metrics.registry.get_sample_value(forwarded) or 0.0

    try:
        while not done():  # joined the group and fetching: the fixed costs are behind
            assert not running.done(), running
            await asyncio.sleep(0.001)
        first, cpu, wall = done(), time.process_time(), time.monotonic()
        while done() < n or outbox.queued:
            assert not running.done(), running
            await asyncio.sleep(0.01)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    finally:
        stopping.set()
        await running
        writer.cancel()
        await producer.stop()
    return {"events": n - first, "cpu_s": cpu, "wall_s": wall}


if __name__ == "__main__":
    runtime.tune_gc()  # as `python -m service` does
    print(orjson.dumps(asyncio.run(forward_all(int(sys.argv[1])))).decode())
