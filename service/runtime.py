"""Process-wide interpreter tuning, applied once at start by `python -m service`.

The benchmark applies it too, to both sides, because they share one interpreter.

Why: up to MAX_INFLIGHT events are alive at once, and each lives long enough to
survive several young collections. With CPython 3.11's default thresholds
(700, 10, 10), the cyclic GC ran about 2,000 times per 20,000 events, and it
took about a third of the service's CPU while it walked those live events over
and over. Freezing what was loaded at boot (modules, settings) and collecting
the young generation every 10,000 allocations instead of every 700 cut the CPU
per event by about 20 % (BENCHMARKS.md). The objects on the hot path hold few
reference cycles, so memory is still reclaimed by reference counting.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    gc.collect()
    gc.freeze()  # everything alive at boot moves to a generation that is never scanned
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
