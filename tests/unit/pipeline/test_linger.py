"""A lane's linger (service/pipeline/linger.py) without Kafka: one linger for a lone
delivery or a chunk, longer while a burst goes on, never past its cap."""

from __future__ import annotations

import asyncio
from time import monotonic

from service.pipeline import linger as linger_module
from service.pipeline.linger import EXTENSIONS, QUIET, linger

LINGER_S = 0.02


async def waited(arrivals: list[float], full: int = 200) -> tuple[float, int]:
    """Seconds the linger waited, and how many were queued by then; `arrivals` are
    the times (after the first delivery) at which one more is queued."""
    queue = [0.0]
    filled = asyncio.Event()
    started = monotonic()

    async def arrive() -> None:
        for at in arrivals:
            await asyncio.sleep(max(0.0, started + at - monotonic()))
            queue.append(at)
            if len(queue) >= full:
                filled.set()

    feeding = asyncio.create_task(arrive())
    await linger(lambda: len(queue), full, started, LINGER_S, filled)
    took = monotonic() - started
    feeding.cancel()
    return took, len(queue)


async def test_a_lone_delivery_or_a_chunk_waits_one_linger() -> None:
    took, queued = await waited([])
    assert LINGER_S - 0.005 <= took < 2 * LINGER_S and queued == 1


async def test_a_burst_keeps_the_batch_open_until_it_stops() -> None:
    every = LINGER_S / 4
    burst = [every * n for n in range(1, 60)]  # 59 more, over 15 lingers
    took, queued = await waited(burst)
    assert queued == 60  # all of it: one batch, not 15
    assert took >= burst[-1] + (QUIET - 1) * LINGER_S  # quiet lingers ended it


async def test_a_full_batch_goes_at_once_and_a_long_burst_at_the_cap() -> None:
    every = LINGER_S / 10
    took, queued = await waited([every * n for n in range(1, 400)], full=50)
    assert queued == 50 and took < 10 * LINGER_S
    endless = [LINGER_S / 2 * n for n in range(1, 4 * EXTENSIONS)]
    took, queued = await waited(endless, full=10_000)
    assert EXTENSIONS * LINGER_S - 0.01 <= took < (EXTENSIONS + 3) * LINGER_S
    assert linger_module.EXTENSIONS * 0.05 == 2.0  # the default cap: 2 s
