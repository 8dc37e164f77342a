"""Runs the real service in-process against a real broker, on topics of its own.

async with ServiceHarness(kafka_bootstrap, tmp_path) as h:
    h.write_secret("org_1-salesforce", {...})
    await h.put_config(make_config("salesforce"))
    await h.send_event(make_event())
    statuses = await h.wait_statuses(1)
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from devkit.broker import partitions_of
from service.app import Service
from service.destinations.base import Destination
from service.metrics import Metrics
from service.settings import Settings

FAST = {  # quick batches, commits and retries, so tests finish in seconds
    "BATCH_LINGER_MS": "20",
    "KAFKA_SESSION_TIMEOUT_MS": "2000",  # Tansu holds a join for half of it
    "COMMIT_INTERVAL_MS": "200",
    "RETRY_BACKOFF_BASE_S": "0.2",
    "RETRY_BACKOFF_MAX_S": "2",
    "SHUTDOWN_TIMEOUT_S": "10",
    "HTTP_PORT": "0",
    "LOG_FORMAT": "text",
}


def topic_env(prefix: str) -> dict[str, str]:
    return {
        "TOPIC_EVALUATIONS": f"{prefix}.evaluations",
        "TOPIC_CONFIGS": f"{prefix}.config",
        "TOPIC_STATUS": f"{prefix}.status",
        "TOPIC_RETRY": f"{prefix}.retry",
        "TOPIC_DLQ": f"{prefix}.dlq",
        "TOPIC_WATERMARKS": f"{prefix}.watermarks",
        "TOPIC_WORK": f"{prefix}.work",
        "KAFKA_CONSUMER_GROUP": f"{prefix}.group",
    }


async def create_input_topics(bootstrap: str, env: dict[str, str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(env["TOPIC_EVALUATIONS"], partitions, 1),
                NewTopic(env["TOPIC_CONFIGS"], 1, 1, topic_configs={"cleanup.policy": "compact"}),
            ]
        )
    finally:
        await admin.close()


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 2.0) -> list[ConsumerRecord]:
    """Every record of a topic, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(bootstrap, topic)
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            fetched = await consumer.getmany(timeout_ms=200)
            for batch in fetched.values():
                records.extend(batch)
            # An empty fetch past the end offsets: Tansu under-reports ListOffsets.
            positions = [await consumer.position(tp) for tp in tps]
            if not fetched and all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
        return records
    finally:
        await consumer.stop()


class ServiceHarness:
    def __init__(
        self,
        bootstrap: str,
        tmp_path: Path,
        *,
        destinations: dict[str, Destination] | None = None,
        env: dict[str, str] | None = None,
        partitions: int = 3,
    ) -> None:
        self.bootstrap = bootstrap
        self.secrets_dir = tmp_path / "secrets"
        self.secrets_dir.mkdir(exist_ok=True)
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SECRETS_DIR": str(self.secrets_dir),
            **FAST,
            **topic_env(f"t{uuid.uuid4().hex[:10]}"),
            **(env or {}),
        }
        self.settings = Settings.from_env(self.env)
        self.partitions = partitions
        self.metrics = Metrics()
        self.service = Service(self.settings, metrics=self.metrics, destinations=destinations)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=False, max_request_size=16 * 1024 * 1024
        )
        self.statuses: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ServiceHarness:
        await create_input_topics(self.bootstrap, self.env, self.partitions)
        await self.producer.start()
        self._tasks.append(asyncio.create_task(self.service.run()))
        await self.wait_until(lambda: self.service.ready()[0], 60, "service ready")
        self._tasks.append(asyncio.create_task(self._tail_statuses()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.service.stop()
        run, *others = self._tasks
        await asyncio.wait_for(run, 30)
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.producer.stop()

    async def wait_until(self, check: Any, timeout: float = 30, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            if self._tasks and self._tasks[0].done():
                self._tasks[0].result()  # surface the service's crash
                raise AssertionError("the service stopped")
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    def write_secret(self, ref: str, data: dict[str, Any]) -> Path:
        path = self.secrets_dir / f"{ref}.json"
        path.write_bytes(orjson.dumps(data))
        return path

    async def put_config(
        self, config: dict[str, Any] | None, *, key: str | None = None, wait: bool = True
    ) -> None:
        key = key or f"{config['org_id']}:{config['destination']}"  # type: ignore[index]
        value = orjson.dumps(config) if config is not None else None
        await self.producer.send_and_wait(self.settings.topic_configs, value, key.encode())
        if wait:
            org, dest = key.split(":", 1)

            def held() -> bool:
                current = self.service.store.get(org, dest)
                if config is None:
                    return current is None
                return current is not None and current.version == config["version"]

            await self.wait_until(held, 30, f"config {key}")

    async def send_event(
        self,
        event: dict[str, Any] | bytes | None,
        *,
        key: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        if isinstance(event, dict):
            key = key or f"{event['org_id']}:{event['lead']['lead_id']}"
            value: bytes | None = orjson.dumps(event)
        else:
            value = event
        await self.producer.send_and_wait(
            self.settings.topic_evaluations, value, (key or "x:y").encode(), headers=headers
        )

    async def wait_statuses(
        self, n: int, timeout: float = 60, *, terminal: bool = True
    ) -> list[dict[str, Any]]:
        """The statuses seen once `n` of them (terminal ones only, by default) arrived."""

        def picked() -> list[dict[str, Any]]:
            return [s for s in self.statuses if not terminal or s["status"] != "retrying"]

        await self.wait_until(lambda: len(picked()) >= n, timeout, f"{n} statuses")
        return picked()

    async def _tail_statuses(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = await partitions_of(self.bootstrap, self.settings.topic_status)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    self.statuses.extend(orjson.loads(r.value) for r in batch)
        finally:
            await consumer.stop()

    async def dlq(self) -> list[ConsumerRecord]:
        return await read_topic(self.bootstrap, self.settings.topic_dlq)

    def metrics_text(self) -> str:
        return self.metrics.render().decode()

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(f"trailspark_destinations_{name}", labels)
        return value or 0.0
