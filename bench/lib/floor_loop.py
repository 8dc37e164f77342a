"""The floor of the work: a plain aiokafka loop, run as a process of its own.

    python -m bench.lib.floor_loop SPEC.json  # one JSON line: events, seconds, rate, cpu_s

Per fetch: parse the events, write each org's leads straight to each sandbox in
batches of the API's maximum (Salesforce composite/sobjects 200, HubSpot batch
upsert 100, Airtable upsert 10), one request per batch (no lookups, retries or
state), produce three status records per event, await the acks, commit.
`"crm": false` is Kafka alone: the same loop without the writes.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.lib.floor_writes import WRITES, Write
from service.pipeline.consumer import FETCH_MAX_WAIT_MS
from service.runtime import tune_gc

PARALLEL = 32  # writes in flight per destination, as the service allows
DESTINATIONS = ("salesforce", "hubspot", "airtable")


def status(event: dict[str, Any], destination: str) -> bytes:
    """A status record of the contract's shape and size."""
    lead = event["lead"]
    return orjson.dumps(
        {
            "schema_version": 1,
            "event_id": event["event_id"],
            "org_id": event["org_id"],
            "lead_id": lead["lead_id"],
            "evaluation_id": event["evaluation"]["evaluation_id"],
            "destination": destination,
            "status": "delivered",
            "reason": None,
            "records": [{"object": "Lead", "id": "00Q000000000000AAA", "action": "updated"}],
            "error": None,
            "attempts": 1,
            "evaluated_at": event["evaluation"]["evaluated_at"],
            "completed_at": "2026-12-02T10:15:00.210Z",
            "latency_ms": 1,
        }
    )


def key(event: dict[str, Any]) -> bytes:
    return f"{event['org_id']}:{event['lead']['lead_id']}".encode()


class Writer:
    def __init__(self, spec: dict[str, Any], http: aiohttp.ClientSession) -> None:
        self.http, self.secrets = http, Path(spec["secrets_dir"])
        self.destinations: list[str] = spec["destinations"]
        self.limits = {d: asyncio.Semaphore(PARALLEL) for d in DESTINATIONS}
        self.creds: dict[str, dict[str, Any]] = {}
        self.failed = 0

    def credentials(self, org: str, destination: str) -> dict[str, Any]:
        key = f"{org}-{destination}"
        if key not in self.creds:
            self.creds[key] = orjson.loads((self.secrets / f"{key}.json").read_bytes())
        return self.creds[key]

    async def send(self, destination: str, write: Write) -> None:
        async with (
            self.limits[destination],
            self.http.request(write.method, write.url, headers=write.headers, data=write.body) as r,
        ):
            await r.read()
            self.failed += r.status >= 300 and r.status != 207

    async def write_all(self, events: list[dict[str, Any]]) -> None:
        by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            by_org[event["org_id"]].append(event)
        sends = [
            self.send(d, w)
            for org, leads in by_org.items()
            for d in self.destinations
            for w in WRITES[d](self.credentials(org, d), leads)
        ]
        await asyncio.gather(*sends)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    tune_gc()  # as `python -m service` does
    n, crm = int(spec["events"]), bool(spec["crm"])
    consumer = AIOKafkaConsumer(
        spec["topic"],
        bootstrap_servers=spec["kafka"],
        group_id=f"floor-{os.urandom(4).hex()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # the service's own setting
        # Big fetches: an org's leads come in few fetches, so its batches are full
        # (the floor writes the fewest requests the data allows).
        max_partition_fetch_bytes=16 * 1024**2,
        fetch_max_bytes=96 * 1024**2,
    )
    producer = AIOKafkaProducer(bootstrap_servers=spec["kafka"], linger_ms=5)
    tls = ssl.create_default_context(cafile=spec["ca_file"])
    await consumer.start()
    await producer.start()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=0))
    writer = Writer(spec, http)
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        seen, started, cpu = 0, time.perf_counter(), time.process_time()
        while seen < n:
            fetched = await consumer.getmany(timeout_ms=100, max_records=n)
            events = [orjson.loads(r.value) for rs in fetched.values() for r in rs]
            if crm:
                await writer.write_all(events)
            acks = [
                await producer.send(spec["status_topic"], status(e, d), key(e))
                for e in events
                for d in writer.destinations
            ]
            await asyncio.gather(*acks)
            await consumer.commit()
            seen += len(events)
        seconds = time.perf_counter() - started
        return {
            "events": seen,
            "seconds": seconds,
            "rate": seen / seconds,
            "cpu_s": time.process_time() - cpu,
            "failed_writes": writer.failed,
        }
    finally:
        await http.close()
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    result = asyncio.run(run(orjson.loads(Path(sys.argv[1]).read_bytes())))
    print(orjson.dumps(result).decode(), flush=True)
