"""What one (org, destination) costs the process, by allocating line.

    python -m bench.micro.tenant_memory [--quick]      # 2,000 orgs (500 with --quick)

The real process (bench/lib/traced_service.py, under tracemalloc) with N orgs x 3
destinations, one event per org, all delivered; then a snapshot. Each
allocation is charged to the innermost `service/` line on its stack, and the
top lines are printed with bytes per (org, destination).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

from bench.e2e import main
from bench.figures import Figure
from devkit.factories import make_event
from devkit.fleet import Fleet, org_id

SECTION = "5. memory"


def by_service_line(path: Path, top: int = 400) -> tuple[int, list[tuple[str, int, int]]]:
    snapshot = tracemalloc.Snapshot.load(str(path))
    total, lines, counts = 0, Counter[str](), Counter[str]()
    for stat in snapshot.statistics("traceback"):
        total += stat.size
        where = next(
            (
                f"{f.filename.split('/service/')[-1]}:{f.lineno}"
                for f in reversed(stat.traceback)
                if "/service/" in f.filename and "/site-packages/" not in f.filename
            ),
            f"(outside) {stat.traceback[0].filename.split('/')[-1]}:{stat.traceback[0].lineno}",
        )
        lines[where] += stat.size
        counts[where] += stat.count
    return total, [(w, s, counts[w]) for w, s in lines.most_common(top)]


async def traced(kafka: str, work: Path, orgs: int) -> Path:
    """One run of `orgs` orgs: the snapshot once every pair is terminal, and peak RSS."""
    snapshot = work / "snapshot.trace"
    f = Fleet(kafka, work, orgs=orgs, env={"TRACE_SNAPSHOT": str(snapshot)})
    await f.prepare()
    try:
        await f.launch(module="bench.lib.traced_service")
        await f.produce([make_event(org_id(i)) for i in range(orgs)])
        await f.wait_terminal(3 * orgs, timeout=900)
        await asyncio.sleep(float(os.environ.get("IDLE_WAIT_S", "5")))
        f.process.send_signal(signal.SIGUSR1)
        while not snapshot.exists() or "snapshot written" not in f.log.read_text():
            await asyncio.sleep(0.5)
        print(f"{orgs} orgs: peak RSS {f.peak_rss_mb():.0f} MB", file=sys.stderr)
    finally:
        await f.__aexit__(None, None, None)
    if keep := os.environ.get("KEEP_SNAPSHOTS"):
        snapshot = Path(shutil.copy(snapshot, Path(keep) / f"{orgs}.trace"))
    return snapshot


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    small, large = 100, 500 if quick else int(os.environ.get("ORGS", "2000"))
    for name in ("small", "large"):
        (work / name).mkdir()
    base = by_service_line(await traced(kafka, work / "small", small))
    full = by_service_line(await traced(kafka, work / "large", large))
    pairs = 3 * (large - small)
    held = dict((w, (s, c)) for w, s, c in base[1])
    rows = sorted(
        ((w, s - held.get(w, (0, 0))[0], c - held.get(w, (0, 0))[1]) for w, s, c in full[1]),
        key=lambda r: -r[1],
    )
    print(f"{'line':60} {'B/pair':>8} {'objs/pair':>9}")
    for where, size, count in rows[:30]:
        print(f"{where:60} {size / pairs:8.0f} {count / pairs:9.1f}")
    per_pair = (full[0] - base[0]) / pairs
    note = f"traced bytes {base[0] / 1e6:.1f} MB at {small} orgs, {full[0] / 1e6:.1f} MB at {large}"
    return [
        Figure(SECTION, "traced bytes per (org, destination)", per_pair, "B", ("<", 5120.0), note)
    ]


if __name__ == "__main__":
    main(run, __doc__)
