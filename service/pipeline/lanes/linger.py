"""How long a lane's batch waits to fill: BATCH_LINGER_MS, longer while a burst lasts.

A fixed linger makes a batch out of what arrives within it, so batch sizes (and
API calls per record, which are the tenant's money) followed how far behind an
instance was: an overloaded instance fetched an org's burst in big chunks, an
instance keeping up got it in slices. So the linger goes on while deliveries
keep coming, up to EXTENSIONS lingers (3 s with the default 50 ms), and ends once
QUIET lingers passed without one. A chunk of MIN_CHUNK records or more starts a
burst by itself: in the two-stage pipeline the rest of an org's burst arrives a
pipeline turn later, often more than one linger after the first chunk. A steady
trickle (at its rate, the batch would not fill before the cap) is not waited
for. A lone event, or a small chunk, still goes after one linger; a full batch
goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from time import monotonic

EXTENSIONS = 60  # the longest wait, in lingers, while deliveries keep arriving
QUIET = 8  # lingers without an arrival that end a burst (a busy process pauses too)
CHUNK_QUIET = 2  # lingers a chunk-started burst waits for its next piece
# A chunk of MIN_CHUNK records or more starts a burst. Counted in records, not as a
# share of a full batch: a lane's batch is the destination's hand-over size (1,000
# for HubSpot, which writes 100 a request), and a few events are a normal flow.
MIN_CHUNK = 10


async def linger(
    queued: Callable[[], int], full: int, oldest_at: float, linger_s: float, filled: asyncio.Event
) -> None:
    """Until `full` are queued, or the flow stopped (nothing arrived in the first
    linger, or in QUIET lingers once more had come), or the flow is a trickle that
    would not fill the batch before the cap, or the oldest waited EXTENSIONS
    lingers. `filled` is set by the lane when a batch is full."""
    latest = oldest_at + EXTENSIONS * linger_s
    step_end, first = oldest_at + linger_s, queued()
    seen, quiet = first, 0
    # A chunk of MIN_CHUNK or more is a burst already: the rest of it comes
    # one pipeline turn later (a fetch, stage 1's forward), often past one linger.
    burst = first >= MIN_CHUNK
    while queued() < full:
        now = monotonic()
        if now >= step_end:
            count = queued()
            burst, quiet = (True, 0) if count != seen else (burst, quiet + 1)
            patience = (QUIET if count > first else CHUNK_QUIET) if burst else 1
            if now >= latest or quiet >= patience:
                return
            # Quiet steps count too: as the flow slows, its average rate falls.
            arrived = count - first
            if arrived and _trickle(arrived, now - oldest_at, full - count, latest - now):
                return
            step_end, seen = min(now + linger_s, latest), count
        filled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(filled.wait(), step_end - now)


def _trickle(arrived: int, elapsed_s: float, missing: int, left_s: float) -> bool:
    """At the rate seen so far, the batch would not fill before the cap: a steady
    stream, not a burst, so waiting would only add latency."""
    return missing * elapsed_s > arrived * left_s
