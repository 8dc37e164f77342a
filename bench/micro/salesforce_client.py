"""simple-salesforce (via asyncio.to_thread) vs the service's aiohttp client, same writes.

    .venv/bin/python -m bench.micro.salesforce_client

Starts the HTTPS Salesforce sandbox in its own process, seeds leads, then times
the same work both ways: per batch of 200 leads, one `SELECT ... WHERE Email IN
(...)` query and one `PATCH /composite/sobjects`. Two scenarios: localhost as is
(CPU-bound) and with 50 ms added per API answer (a real round trip) over 16 lanes.
Prints records/s, medians of 3 runs, and `ratio = aiohttp / sdk`; then the full
`SalesforceDestination.write` (mapping, lookup, write) for reference.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from devkit.factories import make_batch, make_config, make_event
from devkit.sdk_builders.salesforce import sdk_client
from service.destinations.base import DestinationContext
from service.destinations.http import new_session
from service.destinations.salesforce import SalesforceDestination
from service.destinations.salesforce.client import Credentials, RestClient
from service.destinations.salesforce.soql import in_queries
from service.metrics import Metrics
from service.settings import Settings

BATCH, BATCHES = 200, 16
FIELDS = {"TS_Score__c": "warm", "TS_Reasoning__c": "ICP match; visited pricing 4x. " * 8}
SCENARIOS = [("localhost", 0.0, 1), ("localhost", 0.0, 4), ("+50 ms/answer", 0.05, 16)]
Work = tuple[str, list[dict[str, Any]]]


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[str], dict[str, Any], Path]:
    cmd = [sys.executable, "-m", "devkit.sandboxes.salesforce", "--port", "0", "--dir", str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info["credentials"], Path(info["ca_file"])


async def timed(lanes: int, work: list[Any], one: Callable[[int, Any], Awaitable[None]]) -> float:
    queue = list(work)

    async def lane(n: int) -> None:
        while queue:
            await one(n, queue.pop())

    start = time.perf_counter()
    await asyncio.gather(*(lane(n) for n in range(lanes)))
    return time.perf_counter() - start


class Bench:
    def __init__(self, secret: dict[str, Any], ca_file: Path) -> None:
        self.secret, self.ca_file = secret, ca_file
        self.creds = Credentials.parse(secret)
        self.session = new_session(ca_file, 60)
        self.client = RestClient(self.session, Metrics(), quota_retry_s=60, limit_retry_s=5)
        self.sdks = [sdk_client(secret, ca_file) for _ in range(16)]  # a requests session per lane

    async def close(self) -> None:
        for sf in self.sdks:
            sf.session.close()
        await self.session.close()

    async def seed(self, emails: list[str]) -> list[Work]:
        work = []
        for start in range(0, len(emails), BATCH):
            chunk = emails[start : start + BATCH]
            new = [
                {"attributes": {"type": "Lead"}, "LastName": "B", "Company": "C", "Email": e}
                for e in chunk
            ]
            saved = await self.client.collection(self.creds, "POST", new)
            [soql] = in_queries("Lead", "Email", chunk)
            records = [{"attributes": {"type": "Lead"}, "id": r["id"], **FIELDS} for r in saved]
            work.append((soql, records))
        return work

    async def with_sdk(self, lane: int, item: Work) -> None:
        soql, records = item
        sf = self.sdks[lane]
        found = await asyncio.to_thread(sf.query, soql)
        assert found["totalSize"] == len(records)
        body = {"allOrNone": False, "records": records}
        saved = await asyncio.to_thread(sf.restful, "composite/sobjects", method="PATCH", json=body)
        assert saved is not None and all(r["success"] for r in saved)

    async def with_aiohttp(self, lane: int, item: Work) -> None:
        soql, records = item
        assert len(await self.client.query(self.creds, soql)) == len(records)
        saved = await self.client.collection(self.creds, "PATCH", records)
        assert all(r["success"] for r in saved)

    async def set_latency(self, seconds: float) -> None:
        url = f"{self.creds.instance_url}/_sandbox/latency"
        async with self.session.post(url, json={"seconds": seconds}) as resp:
            assert resp.status == 204

    async def rate(
        self, lanes: int, work: list[Work], one: Callable[[int, Any], Awaitable[None]]
    ) -> tuple[float, float]:
        """(records per wall second, records per CPU second of this client process)."""
        walls, cpus = [], []
        for _ in range(3):
            cpu = time.process_time()  # all threads of this process: the SDK's included
            walls.append(await timed(lanes, work, one))
            cpus.append(time.process_time() - cpu)
        records = BATCH * len(work)
        return records / statistics.median(walls), records / statistics.median(cpus)


async def full_write(bench: Bench, emails: list[str]) -> float:
    settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=bench.ca_file)
    dest = SalesforceDestination(DestinationContext(settings, Metrics()))
    await dest.setup()
    cfg = make_config("salesforce")
    events = [make_event(email=e) for e in emails]
    batches = [
        make_batch(cfg, events[i : i + BATCH], bench.secret) for i in range(0, len(events), BATCH)
    ]

    async def write(lane: int, batch: Any) -> None:
        assert all(o.state.value == "delivered" for o in await dest.write(batch))

    try:
        return len(events) / await timed(4, batches, write)
    finally:
        await dest.close()


async def main() -> None:
    proc, secret, ca_file = start_sandbox(Path(tempfile.mkdtemp(prefix="sf-bench-")))
    bench = Bench(secret, ca_file)
    try:
        emails = [f"bench.{i}@example.com" for i in range(BATCH * BATCHES)]
        work = await bench.seed(emails)
        print(
            f"salesforce client benchmark: {BATCHES} batches x {BATCH} records, each 1 IN query"
            " + 1 PATCH /composite/sobjects; HTTPS sandbox in its own process; median of 3"
        )
        await timed(16, work, bench.with_sdk)  # warm up: TLS handshakes, pools
        await timed(16, work, bench.with_aiohttp)
        for label, latency, lanes in SCENARIOS:
            await bench.set_latency(latency)
            sdk, sdk_cpu = await bench.rate(lanes, work, bench.with_sdk)
            aio, aio_cpu = await bench.rate(lanes, work, bench.with_aiohttp)
            print(
                f"{label:>13}, lanes={lanes:<2}: sdk (simple-salesforce via asyncio.to_thread)"
                f" {sdk:6,.0f} records/s | aiohttp {aio:6,.0f} records/s"
                f" | ratio = aiohttp / sdk = {aio / sdk:.2f}"
                f"  [client CPU: sdk {sdk_cpu:6,.0f}, aiohttp {aio_cpu:6,.0f} records/cpu-s,"
                f" ratio {aio_cpu / sdk_cpu:.2f}]"
            )
        await bench.set_latency(0.0)
        rate = await full_write(bench, emails)
        print(f"SalesforceDestination.write, 4 lanes (map + lookup + write): {rate:,.0f} events/s")
    finally:
        await bench.close()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
