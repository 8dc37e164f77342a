"""5. Memory: peak RSS (VmHWM) of `python -m service` in three situations.

    python -m bench.sections.memory [--quick]

- a backlog produced before the service starts, one org with only Salesforce
  active and every answer 1 s late: measured until the backlog is consumed into
  the delay tiers (lag 0) or the window ends;
- 1,000 and 10,000 orgs with a config for each destination, a few thousand
  events (10,000: one per org), with RSS over time;
- 1 M watermark entries in the compacted changelog, restored at start (and the
  restore time, from the service's "restored watermark partitions" lines).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from time import monotonic

from bench.figures import Figure
from bench.lib.e2e import main, proc_status, produce_all
from devkit.changelog import fill_watermarks
from devkit.factories import make_event
from devkit.fleet import Fleet, org_id
from devkit.harness import create_input_topics

SECTION = "5. memory"
LIMIT_MB = 250.0
PARTITIONS = 6
RESTORED = re.compile(r"restored watermark partitions .*?: (\d+) records in ([\d.]+)s")


def rss(name: str, f: Fleet, note: str) -> Figure:
    return Figure(SECTION, f"peak RSS, {name}", f.peak_rss_mb(), "MB", ("<", LIMIT_MB), note)


async def backlog(kafka: str, work: Path, n: int, window_s: float) -> list[Figure]:
    f = Fleet(kafka, work, orgs=1, destinations=("salesforce",))
    f.sf.latency_s = 1.0
    await create_input_topics(kafka, f.env, f.partitions)
    started = monotonic()
    await produce_all(kafka, f.env["TOPIC_EVALUATIONS"], [make_event(org_id(0)) for _ in range(n)])
    produced = monotonic() - started
    async with f:
        assert f.process is not None
        started, samples = monotonic(), []  # VmRSS each second: a peak, or a climb?
        while monotonic() < started + window_s and (
            await f.metric("events_consumed_total") < n or await f.metric("consumer_lag") > 0
        ):
            samples.append(proc_status(f.process.pid, "VmRSS"))
            await asyncio.sleep(1)
        took = monotonic() - started
        consumed = await f.metric("events_consumed_total")
        deferred = await f.metric("deferrals_total", destination="salesforce")
        samples = samples or [proc_status(f.process.pid, "VmRSS")]
        quarters = [samples[int(q * (len(samples) - 1))] for q in (0.25, 0.5, 0.75, 1)]
        note = (
            f"{consumed:,.0f} of {n:,} consumed in {took:.0f} s (window {window_s:.0f} s), "
            f"{deferred:,.0f} deferrals; RSS at 1/4, 1/2, 3/4, end of it "
            f"{'/'.join(f'{q:.0f}' for q in quarters)} MB; produced in {produced:.0f} s first"
        )
        return [rss(f"{n:,}-event backlog, Salesforce 1 s per answer", f, note)]


async def many_orgs(kafka: str, work: Path, orgs: int, n: int) -> list[Figure]:
    async with Fleet(kafka, work, orgs=orgs) as f:
        assert f.process is not None
        started = monotonic()
        samples: list[float] = []  # VmRSS every 5 s: a peak, or a climb?

        async def sample() -> None:
            while True:
                samples.append(proc_status(f.process.pid, "VmRSS"))
                await asyncio.sleep(5)

        sampler = asyncio.create_task(sample())
        try:
            await f.produce([make_event(org_id(i % orgs)) for i in range(n)])
            await f.wait_terminal(3 * n, timeout=900)
            took = monotonic() - started
            await asyncio.sleep(5)  # and once the tenants are idle
        finally:
            sampler.cancel()
        over_time = "/".join(f"{s:.0f}" for s in samples)
        note = f"{3 * n:,} pairs terminal in {took:.1f} s; RSS every 5 s {over_time} MB"
        return [rss(f"{orgs:,} orgs x 3 destinations, {n:,} events", f, note)]


async def watermarks(kafka: str, work: Path, n: int) -> list[Figure]:
    f = Fleet(kafka, work, orgs=1, destinations=("salesforce",))
    changelog = f.env["TOPIC_WATERMARKS"] + ".by-org"  # service/pipeline/layout.py
    await fill_watermarks(kafka, changelog, n, PARTITIONS)
    started = monotonic()
    async with f:
        ready = monotonic() - started
        found = [RESTORED.search(line) for line in f.log.read_text().splitlines()]
        restores = [(int(m[1]), float(m[2])) for m in found if m]
        records = sum(r for r, _ in restores)
        seconds = max((s for _, s in restores), default=float("nan"))
        note = f"{records:,} records restored; start to ready {ready:.1f} s"
        return [
            rss(f"{n:,} watermark entries restored", f, note),
            Figure(SECTION, f"restore of {n:,} watermark entries", seconds, "s", None, note),
        ]


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    for name in ("backlog", "orgs", "state"):
        (work / name).mkdir(exist_ok=True)
    if quick:
        sizes = (20_000, 20.0), (200, 1_000), 50_000
    else:
        sizes = (500_000, 180.0), (1_000, 5_000), 1_000_000
    figures = await backlog(kafka, work / "backlog", *sizes[0])
    figures += await many_orgs(kafka, work / "orgs", *sizes[1])
    if not quick:  # the large install planned for one pod (issue 23)
        (work / "orgs10k").mkdir(exist_ok=True)
        figures += await many_orgs(kafka, work / "orgs10k", 10_000, 10_000)
    return figures + await watermarks(kafka, work / "state", sizes[2])


if __name__ == "__main__":
    main(run, __doc__)
