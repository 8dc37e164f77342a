"""How long a lane's batch waits to fill: BATCH_LINGER_MS, longer while a burst lasts.

A fixed linger makes a batch out of what arrives within it, so batch sizes (and
API calls per record, which are the tenant's money) followed how far behind an
instance was: an overloaded instance fetched an org's burst in big chunks, an
instance keeping up got it in slices. So the linger goes on while deliveries
keep coming, up to EXTENSIONS lingers (3 s with the default 50 ms), and ends once
QUIET lingers passed without one. A chunk of a tenth of a batch or more starts a
burst by itself: in the two-stage pipeline the rest of an org's burst arrives a
pipeline turn later, often more than one linger after the first chunk. A lone
event, or a small chunk, still goes after one linger; a full batch goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from time import monotonic

EXTENSIONS = 60  # the longest wait, in lingers, while deliveries keep arriving
QUIET = 8  # lingers without an arrival that end a burst (a busy process pauses too)
BURST_CHUNK = 10  # a chunk of a tenth of a full batch starts a burst


async def linger(
    queued: Callable[[], int], full: int, oldest_at: float, linger_s: float, filled: asyncio.Event
) -> None:
    """Until `full` are queued, or the flow stopped (nothing arrived in the first
    linger, or in QUIET lingers once more had come), or the oldest waited
    EXTENSIONS lingers. `filled` is set by the lane when a batch is full."""
    latest = oldest_at + EXTENSIONS * linger_s
    step_end, seen, quiet = oldest_at + linger_s, queued(), 0
    # A chunk of a tenth of a batch or more is a burst already: the rest of it comes
    # one pipeline turn later (a fetch, stage 1's forward), often past one linger.
    burst = seen > 1 and seen * BURST_CHUNK >= full  # a lone event is never one
    while queued() < full:
        now = monotonic()
        if now >= step_end:
            count = queued()
            burst, quiet = (True, 0) if count != seen else (burst, quiet + 1)
            if now >= latest or quiet >= (QUIET if burst else 1):
                return
            step_end, seen = min(now + linger_s, latest), count
        filled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(filled.wait(), step_end - now)
