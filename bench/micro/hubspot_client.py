"""hubspot-api-client (via asyncio.to_thread) vs the service's aiohttp client, same writes.

    .venv/bin/python -m bench.micro.hubspot_client

Starts the HTTPS HubSpot sandbox in its own process (so client and server do
not share a GIL), creates the contacts once, then times the same work both
ways: batches of 100 `POST /crm/v3/objects/contacts/batch/upsert` inputs
(idProperty email). Scenarios: localhost as is (CPU-bound) at 1 and 4 lanes,
and with 50 ms added per answer (a real round trip) over 16 lanes. The SDK gets
a thread per lane and a urllib3 pool as large. Prints records/s (median of 3
runs) and `ratio = aiohttp / sdk`; then the full `HubSpotDestination.write`.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)

from devkit.factories import make_batch, make_config, make_event
from devkit.sdk_builders.hubspot import close_apis, sdk_client
from service.destinations.base import DestinationContext
from service.destinations.http import new_session
from service.destinations.hubspot import HubSpotDestination, writer
from service.destinations.hubspot.client import Credentials, HubSpotClient
from service.destinations.hubspot.limits import TokenLimits
from service.destinations.hubspot.options import HubSpotOptions
from service.destinations.hubspot.outcomes import Done, Input
from service.destinations.oauth import TokenSource
from service.metrics import Metrics
from service.settings import Settings

BATCH, BATCHES, RUNS = 100, 40, 5
SCENARIOS = [("localhost", 0.0, 1), ("localhost", 0.0, 4), ("+50 ms/answer", 0.05, 16)]
UNLIMITED = {"max_requests": 1_000_000, "search_requests": 1_000_000}
PROPS = {"ts_score": "warm", "ts_reasoning": "ICP match; visited pricing 4x. " * 8}
Chunk = list[dict[str, Any]]


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[str], dict[str, Any], Path]:
    cmd = [
        sys.executable,
        "-m",
        "devkit.sandboxes.hubspot",
        "--port",
        "0",
        "--dir",
        str(folder),
        "--max-requests",
        "1000000",
        "--search-per-s",
        "1000000",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info["credentials"], Path(info["ca_file"])


def chunks() -> list[Chunk]:
    return [
        [
            {"idProperty": "email", "id": f"bench{b}-{i}@example.com", "properties": PROPS}
            for i in range(BATCH)
        ]
        for b in range(BATCHES)
    ]


async def timed(lanes: int, work: list[Chunk], one: Callable[[Chunk], Awaitable[int]]) -> float:
    """Records per second, `lanes` workers draining the same queue."""
    queue = list(work)
    written = 0

    async def lane() -> None:
        nonlocal written
        while queue:
            done = await one(queue.pop())  # not `written += await ...`: that reads first
            written += done

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return written / (time.perf_counter() - start)


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-hubspot-"))
    proc, creds, ca = start_sandbox(folder)
    session = new_session(ca, 30.0)  # closed in the finally below
    metrics = Metrics()
    fast = HubSpotClient(
        session,
        Credentials.parse(creds),
        TokenLimits(HubSpotOptions(**UNLIMITED)),
        metrics,
        TokenSource("hubspot", metrics, default_lifetime_s=1800.0),
    )
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=16))  # a thread per lane
    sdk = sdk_client(creds, ca, folder, connection_pool_maxsize=16)
    batch_api = sdk.crm.contacts.batch_api
    work = chunks()

    async def via_aiohttp(chunk: Chunk) -> int:
        inputs = [Input(str(n), body) for n, body in enumerate(chunk)]
        out = await writer.batch(fast, "contacts", "upsert", inputs, BATCH)
        return sum(isinstance(r, Done) for r in out.values())

    def sdk_upsert(chunk: Chunk) -> int:
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[SimplePublicObjectBatchInputUpsert(**_snake(i)) for i in chunk]
        )
        return len(batch_api.upsert(body).results)

    async def via_sdk(chunk: Chunk) -> int:
        return await asyncio.to_thread(sdk_upsert, chunk)

    try:
        await timed(4, work, via_aiohttp)  # create every contact: all runs below are updates
        await timed(4, work, via_sdk)  # warm up the SDK (imports, pools)
        print(f"{BATCHES} batches x {BATCH} contacts, batch/upsert by email, median of {RUNS}")
        print(f"{'scenario':<16}{'lanes':>6}{'sdk rec/s':>12}{'aiohttp rec/s':>15}{'ratio':>8}")
        for name, latency, lanes in SCENARIOS:
            await set_latency(session, creds["base_url"], latency)
            sdk_rates, fast_rates = [], []
            for _ in range(RUNS):
                sdk_rates.append(await timed(lanes, work, via_sdk))
                fast_rates.append(await timed(lanes, work, via_aiohttp))
            s, f = statistics.median(sdk_rates), statistics.median(fast_rates)
            print(f"{name:<16}{lanes:>6}{s:>12.0f}{f:>15.0f}{f / s:>8.2f}")
        await set_latency(session, creds["base_url"], 0.0)
        rate = await destination_rate(ca, creds)
        print(f"full HubSpotDestination.write, 1000 events: {rate:.0f} rec/s")
    finally:
        close_apis(batch_api)
        await session.close()
        proc.terminate()
        proc.wait(10)


def _snake(body: dict[str, Any]) -> dict[str, Any]:
    return {"id_property": body["idProperty"], "id": body["id"], "properties": body["properties"]}


async def set_latency(session: aiohttp.ClientSession, base_url: str, seconds: float) -> None:
    async with session.post(f"{base_url}/_sandbox/config", json={"latency_s": seconds}) as resp:
        resp.raise_for_status()


async def destination_rate(ca: Path, creds: dict[str, Any]) -> float:
    settings = Settings(bootstrap_servers="unused", destination_ca_file=ca)
    dest = HubSpotDestination(DestinationContext(settings, Metrics(), {"hubspot": UNLIMITED}))
    config = make_config("hubspot")
    events = [make_event() for _ in range(1000)]
    try:
        start = time.perf_counter()
        outcomes = await dest.write(make_batch(config, events, creds))
        rate = len(events) / (time.perf_counter() - start)
    finally:
        await dest.close()
    assert all(o.state == "delivered" for o in outcomes)
    return rate


if __name__ == "__main__":
    asyncio.run(main())
