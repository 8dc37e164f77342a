"""A lane's linger (service/pipeline/lanes/linger.py) without Kafka: one linger for a lone
delivery or a chunk, longer while a burst goes on, never past its cap."""

from __future__ import annotations

import asyncio
from time import monotonic

from service.pipeline.lanes import linger as linger_module
from service.pipeline.lanes.linger import EXTENSIONS, QUIET, linger

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
    took, queued = await waited([], full=10)  # alone, even where a batch is small
    assert took < 2 * LINGER_S and queued == 1
    few = [0.0] * 5  # half of a small batch at once is not a burst either
    took_from = monotonic()
    await linger(lambda: len(few), 10, took_from, LINGER_S, asyncio.Event())
    assert monotonic() - took_from < 2 * LINGER_S


async def test_a_burst_keeps_the_batch_open_until_it_stops() -> None:
    every = LINGER_S / 4
    burst = [every * n for n in range(1, 60)]  # 59 more, over 15 lingers
    took, queued = await waited(burst)
    assert queued == 60  # all of it: one batch, not 15
    # Once it stopped, its average rate could not fill a batch before the cap:
    # it goes within QUIET lingers, not at the cap.
    assert burst[-1] < took < burst[-1] + (QUIET + 1) * LINGER_S


async def test_a_full_batch_goes_at_once_and_a_burst_never_passes_the_cap() -> None:
    every = LINGER_S / 10
    took, queued = await waited([every * n for n in range(1, 400)], full=50)
    assert queued == 50 and took < 10 * LINGER_S
    # Two a linger, to fill 2 x EXTENSIONS: a burst that fills right at the cap.
    steady = [LINGER_S / 2 * n for n in range(1, 4 * EXTENSIONS)]
    took, queued = await waited(steady, full=2 * EXTENSIONS)
    assert took < (EXTENSIONS + 3) * LINGER_S
    assert linger_module.EXTENSIONS * 0.05 == 3.0  # the default cap: 3 s


async def test_a_steady_trickle_is_not_waited_for() -> None:
    """One a linger would take 200 lingers to fill a batch, far past the cap: the
    lane goes after the first arrivals instead of adding latency."""
    trickle = [LINGER_S * n for n in range(1, 400)]
    took, queued = await waited(trickle, full=200)
    assert took < 4 * LINGER_S and queued < 5


async def test_a_chunk_of_min_chunk_records_waits_for_the_rest_of_its_burst() -> None:
    """The two-stage pipeline hands a burst over in chunks a pipeline turn apart:
    a big first chunk keeps the batch open for the next one."""
    queue = [0.0] * 20  # 20 of a full 200 came at once (one of six pods' share)
    started = monotonic()

    async def next_chunk() -> None:
        await asyncio.sleep(1.5 * LINGER_S)  # the next fetch, a linger and a half later
        queue.extend([0.0] * 180)

    feeding = asyncio.create_task(next_chunk())
    await linger(lambda: len(queue), 200, started, LINGER_S, asyncio.Event())
    taken = len(queue)  # what the lane's batch would take now
    await feeding
    assert taken == 200 and monotonic() - started >= 1.5 * LINGER_S
    small = [0.0] * 5  # fewer than MIN_CHUNK at once: one linger, then it goes
    took_from = monotonic()
    await linger(lambda: len(small), 200, took_from, LINGER_S, asyncio.Event())
    assert monotonic() - took_from < 2 * LINGER_S


async def test_a_chunk_waits_where_the_hand_over_is_bigger_than_a_request() -> None:
    """HubSpot's lanes hand over up to 1,000 (it writes 100 a request): one of six
    pods' share of an org's 200 still waits for the other five."""
    queue = [0.0] * 33
    started = monotonic()

    async def the_others() -> None:
        await asyncio.sleep(1.5 * LINGER_S)
        queue.extend([0.0] * 167)

    feeding = asyncio.create_task(the_others())
    await linger(lambda: len(queue), 1_000, started, LINGER_S, asyncio.Event())
    taken = len(queue)
    await feeding
    assert taken == 200
