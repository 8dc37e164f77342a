"""4. Latency, HubSpot alone: search pacing with and without even spacing.

    python -m bench.sections.hubspot_pacing [--quick]

The real HubSpotDestination against the HTTPS sandbox (50 ms per answer, search
4/s), driven like a lane: events arrive at 5/s (one org of the 20-org run), each a
new lead of a new company, so every batch searches; a batch is what arrived
while the previous write ran (after a 50 ms linger). Same code, two settings:
searches spaced one per 1/4 s (the default) and spacing off (`search_spacing_s=0`,
the window alone: four back to back, then a stall). No Kafka: the difference is
the destination's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from time import monotonic
from typing import Any

from bench.figures import Figure
from bench.lib.e2e import main, percentile
from devkit.factories import make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import batch, destination, hubspot_config
from service.destinations.hubspot import HubSpotDestination

SECTION = "4. latency"
RATE, LINGER_S = 5.0, 0.05


async def lane(hs: HubSpotSandbox, dest: HubSpotDestination, seconds: float) -> list[float]:
    """Event -> outcome seconds for events arriving evenly at RATE, written one batch
    at a time."""
    queue: list[tuple[float, dict[str, Any]]] = []
    done: list[float] = []
    config = hubspot_config()

    async def arrive() -> None:
        start = monotonic()
        for n in range(int(seconds * RATE)):
            await asyncio.sleep(max(0.0, start + n / RATE - monotonic()))
            queue.append((monotonic(), make_event(domain=f"c{n}-{start}.example")))

    arrivals = asyncio.create_task(arrive())
    while not arrivals.done() or queue:
        if not queue:
            await asyncio.sleep(0.005)
            continue
        await asyncio.sleep(max(0.0, queue[0][0] + LINGER_S - monotonic()))
        taken, queue[:] = list(queue), []
        outcomes = await dest.write(batch(hs, config, [e for _, e in taken]))
        assert {o.state.value for o in outcomes} == {"delivered"}, outcomes
        done += [monotonic() - at for at, _ in taken]
    return done


async def measure(work: Path, seconds: float, **options: Any) -> list[float]:
    async with HubSpotSandbox(work, search_per_s=4, latency_s=0.05) as hs:
        dest = destination(hs, **options)
        try:
            await lane(hs, dest, 3)  # TLS, the connection pool
            return await lane(hs, dest, seconds)
        finally:
            await dest.close()


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    seconds = 6 if quick else 30
    work = work / "hubspot_pacing"  # the runner may share `work` between modules
    work.mkdir(exist_ok=True)
    spaced = await measure(work, seconds)
    burst = await measure(work, seconds, search_spacing_s=0)
    p99, was = percentile(spaced, 0.99), percentile(burst, 0.99)
    note = (
        f"one HubSpot lane at 5 events/s, a search per batch: spaced p50 "
        f"{percentile(spaced, 0.5):.3f} s; window alone p50 {percentile(burst, 0.5):.3f} s, "
        f"p99 {was:.3f} s"
    )
    return [
        Figure(SECTION, "HubSpot lane p99, searches spaced (no Kafka)", p99, "s", None, note),
        Figure(SECTION, "HubSpot lane p99, spaced / window alone", p99 / was, "x"),
    ]


if __name__ == "__main__":
    main(run, __doc__)
