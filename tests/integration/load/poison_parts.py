"""Helpers of the issue 19 end-to-end tests (test_poison_e2e.py, beside this): a Fleet with
quick settings, events and records built byte for byte, and what a test reads
back (every status, committed offsets, topic configs, readiness, metrics)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from devkit.fleet import Fleet, org_id
from devkit.harness import FAST, read_topic
from service.pipeline.layout import BY_ORG
from service.pipeline.tiers import tier_topics
from service.tenancy import org_partition
from tests.integration.test_process_lifecycle import committed_vs_end

ORG = org_id(0)
# The harness's quick batches, commits, joins and retries; JSON logs (Instance reads them).
QUICK = {k: v for k, v in FAST.items() if k not in ("HTTP_PORT", "LOG_FORMAT")}


def quick_fleet(
    kafka: str,
    tmp_path: Path,
    destinations: tuple[str, ...] = ("salesforce", "hubspot", "airtable"),
    *,
    partitions: int = 1,
    orgs: int = 1,
    own_hubspot: int = 0,
    **env: str,
) -> Fleet:
    return Fleet(
        kafka,
        tmp_path,
        orgs=orgs,
        destinations=destinations,
        partitions=partitions,
        own_hubspot=own_hubspot,
        env={**QUICK, **env},
    )


def tiers_of(f: Fleet) -> list[str]:
    """Stage 2's delay tiers, `{TOPIC_RETRY}.by-org...` (service/pipeline/layout.py)."""
    return tier_topics(f.env["TOPIC_RETRY"] + BY_ORG)


def changelog_of(f: Fleet) -> str:
    """Stage 2's watermarks changelog, co-partitioned with the work topic."""
    return f.env["TOPIC_WATERMARKS"] + BY_ORG


def work_partition(f: Fleet, org: str) -> int:
    """The org's work partition (the work topic has the evaluations' count by default)."""
    return org_partition(org, int(f.env.get("WORK_PARTITIONS") or f.partitions))


async def parked(f: Fleet) -> list[ConsumerRecord]:
    """Every record of stage 2's delay tiers."""
    return [r for t in tiers_of(f) for r in await read_topic(f.kafka, t)]


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions  # aiokafka's default


def leads_in(partition: int, partitions: int, n: int, prefix: str = "lead") -> list[str]:
    """`n` lead ids of ORG whose events land in `partition`."""
    found = []
    i = 0
    while len(found) < n:
        lead = f"{prefix}_{i}"
        if partition_of(f"{ORG}:{lead}", partitions) == partition:
            found.append(lead)
        i += 1
    return found


def raw_event(event: dict[str, Any], **raw_fields: bytes) -> bytes:
    """The event's JSON with top-level fields whose values orjson cannot write
    (`x=b"1e400"`): valid JSON, a number no double holds."""
    body = orjson.dumps({**event, **{name: f"@{name}@" for name in raw_fields}})
    for name, raw in raw_fields.items():
        body = body.replace(f'"@{name}@"'.encode(), raw)
    return body


async def produce_raw(
    kafka: str,
    topic: str,
    records: list[tuple[bytes, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
    partition: int | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key, partition=partition, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def pairs(events: list[dict[str, Any]], destinations: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(str(e["event_id"]), d) for e in events for d in destinations}


def statuses_of(f: Fleet, event: dict[str, Any]) -> dict[str, str]:
    """destination -> terminal status (with its reason) of one event."""
    return {
        d: s["status"] + (f":{s['reason']}" if s["reason"] else "")
        for (e, d), s in f.terminal.items()
        if e == event["event_id"]
    }


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds until `check()` is true (it may be a coroutine function)."""
    started = monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return monotonic() - started
        assert monotonic() - started < timeout, f"timed out after {timeout}s: {what}"
        await asyncio.sleep(0.1)


async def every_status(f: Fleet) -> list[dict[str, Any]]:
    """Every status record so far, `retrying` ones included."""
    return [orjson.loads(r.value) for r in await read_topic(f.kafka, f.env["TOPIC_STATUS"])]


async def fully_committed(f: Fleet, timeout: float = 10) -> dict[int, int | None]:
    committed: dict[int, int | None] = {}

    async def done() -> bool:
        nonlocal committed
        committed, ends = await committed_vs_end(f.kafka, f.env)
        return committed == ends

    await until(done, timeout, "offsets committed to the end")
    return committed


async def retrying(f: Fleet, event: dict[str, Any], n: int) -> bool:
    """`n` destinations of `event` have sent a `retrying` status."""
    mine = [s for s in await every_status(f) if s["event_id"] == event["event_id"]]
    return len({s["destination"] for s in mine if s["status"] == "retrying"}) >= n


async def answered(f: Fleet, event: dict[str, Any]) -> bool:
    """Each destination of `event` has sent a status (retrying or terminal)."""
    mine = [s for s in await every_status(f) if s["event_id"] == event["event_id"]]
    return len({s["destination"] for s in mine}) == len(f.destinations)


async def failures_at_least(failures: Callable[[], Any], n: float) -> bool:
    return bool(await failures() >= n)


async def ready(port: int) -> bool:
    try:
        return (await get(port, "/readyz"))[0] == 200
    except aiohttp.ClientError:
        return False


async def open_circuits(f: Fleet) -> bool:
    return await f.metric("circuit_open", destination="salesforce") > 0


async def max_message_bytes(kafka: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        wanted = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        responses = await admin.describe_configs(wanted)
    finally:
        await admin.close()
    limits = {}
    for response in responses:
        for _, _, _, topic, entries in response.resources:
            found = {entry[0]: entry[1] for entry in entries}
            limits[topic] = int(found.get("max.message.bytes") or 1_048_588)  # Kafka's default
    return limits


def dropped_by(lines: list[str]) -> int:
    """Queued deliveries dropped on hand-backs, from an instance's log lines."""
    return sum(int(n) for line in lines for n in re.findall(r"(\d+) queued deliveries", line))
