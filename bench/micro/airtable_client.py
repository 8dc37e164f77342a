"""pyairtable (via asyncio.to_thread) vs the service's aiohttp client, same writes.

    .venv/bin/python -m bench.micro.airtable_client

Starts the HTTPS Airtable sandbox in its own process (rate limit lifted: this
measures the client, not Airtable's 5 requests/s), then times the same work both
ways through `AirtableDestination.write`, the production code path, with option
`client: "sdk"` (each request one `asyncio.to_thread` into pyairtable) and
`client: "aiohttp"` (the default): 8 batches of 200 events, upserted on Email,
i.e. 160 `PATCH` requests of 10 records. Scenarios: localhost as is (CPU-bound),
and with 50 ms added to every answer (a real round trip) over 4 lanes. Prints
events/s (median of 3 runs, the two clients alternating) and `ratio = aiohttp / sdk`.
With latency, the SDK path is also bounded by asyncio's default thread pool
(min(32, cores + 4) workers), the aiohttp path by its connection pool (100).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devkit.factories import make_batch, make_config, make_event
from service.destinations.airtable import AirtableDestination, AirtableOptions
from service.destinations.base import Batch, DestinationContext
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings

BATCH, BATCHES, RUNS = 200, 8, 3
SCENARIOS = [("localhost", 0, 1), ("localhost", 0, 4), ("+50 ms/answer", 50, 4)]


def start_sandbox(
    folder: Path, latency_ms: int
) -> tuple[subprocess.Popen[str], dict[str, Any], Path]:
    cmd = [
        sys.executable, "-m", "devkit.sandboxes.airtable", "--port", "0", "--dir", str(folder),
        "--rate-limit", "1000000", "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info["credentials"], Path(info["ca_file"])


def batches(credentials: dict[str, Any], run: int) -> list[Batch]:
    config = make_config("airtable")
    reasoning = "ICP match; visited pricing 4x this week. " * 8
    return [
        make_batch(
            config,
            [
                make_event(lead_id=f"r{run}b{b}l{i}", reasoning=reasoning, score="warm")
                for i in range(BATCH)
            ],
            credentials,
        )
        for b in range(BATCHES)
    ]


async def timed(dest: AirtableDestination, work: list[Batch], lanes: int) -> float:
    queue = list(work)

    async def lane() -> None:
        while queue:
            outcomes = await dest.write(queue.pop())
            assert all(o.state is DeliveryState.DELIVERED for o in outcomes)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return time.perf_counter() - start


async def scenario(credentials: dict[str, Any], ca_file: Path, lanes: int) -> dict[str, float]:
    settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=ca_file)
    rates: dict[str, list[float]] = {"sdk": [], "aiohttp": []}
    dests = {}
    for client in rates:
        options = AirtableOptions(requests_per_second=1_000_000, client=client)
        dests[client] = AirtableDestination(DestinationContext(settings, Metrics()), options)
        await dests[client].setup()
    try:
        for client in rates:  # warm up connections and caches
            await timed(dests[client], batches(credentials, -1)[:1], 1)
        for run in range(RUNS):
            order = list(rates) if run % 2 == 0 else list(reversed(rates))
            for client in order:
                work = batches(credentials, run)  # the same events: upserts of the same keys
                seconds = await timed(dests[client], work, lanes)
                rates[client].append(BATCH * BATCHES / seconds)
    finally:
        for dest in dests.values():
            await dest.close()
    return {client: statistics.median(values) for client, values in rates.items()}


async def main() -> None:
    print(f"{BATCHES} batches x {BATCH} events, upsert on Email, 10 records per PATCH")
    with tempfile.TemporaryDirectory() as folder:
        for name, latency_ms, lanes in SCENARIOS:
            proc, credentials, ca_file = start_sandbox(Path(folder), latency_ms)
            try:
                rate = await scenario(credentials, ca_file, lanes)
            finally:
                proc.terminate()
                proc.wait()
            ratio = rate["aiohttp"] / rate["sdk"]
            print(
                f"{name:>14}, {lanes} lane(s): sdk {rate['sdk']:8.0f} events/s"
                f"   aiohttp {rate['aiohttp']:8.0f} events/s   ratio = aiohttp / sdk = {ratio:.2f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
