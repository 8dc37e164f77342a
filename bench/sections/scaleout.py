"""6. Scale-out on tenant-limited work: 1, 2, 3 and 6 instances in one group over 12 partitions.

    python -m bench.sections.scaleout [--quick]

Each fleet size gets fresh topics and groups, 24 orgs and the three HTTPS
sandboxes (in this process) enforcing the published per-tenant limits: each
Airtable base 5 requests/s with the 30 s penalty after a 429, each HubSpot
account 190 requests per 10 s and 4 searches/s. Once every instance runs and
the work partitions have settled (past every handoff hold), a warm-up burst
opens connections and lanes; then 24 orgs x 200 new leads are sent at once and
timed until every (event, destination) pair has a terminal status. Reported per
fleet size, side by side: CRM requests per record per destination (against one
instance's), 429s, the busiest Airtable base and HubSpot account, and the time.

Then the cost of the extra stage on one instance: stage 1 alone
(bench/lib/stage1_alone.py, a process of its own) over the same number of events,
in CPU per event, against one instance's whole CPU per event.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from time import monotonic
from typing import Any

import orjson

from bench.figures import Figure
from bench.lib.e2e import broker_pid, cpu_seconds, main
from bench.plot import REQUESTS
from devkit.factories import make_event
from devkit.fleet import DESTINATIONS, Fleet, org_id
from devkit.harness import create_input_topics
from devkit.tenant_limits import Requests, airtable_peak, hubspot_peak, rejected

SECTION = "6. scale-out"
PARTITIONS, ORGS = 12, 24
SETTLE_S = 12.0  # past a HubSpot handoff hold (10 s) after the last rebalance
STAGE1_EVENTS = 20_000


def burst(leads: int, prefix: str) -> list[dict[str, Any]]:
    orgs = [org_id(o) for o in range(ORGS)]
    return [make_event(org, f"{org}_{prefix}{n}") for n in range(leads) for org in orgs]


async def one_fleet(kafka: str, work: Path, n: int, leads: int) -> dict[str, Any]:
    async with Fleet(kafka, work, orgs=ORGS, partitions=PARTITIONS, tenant_limits=True) as f:
        await f.add_instances(n - 1)
        split = await f.settled(steady_s=SETTLE_S)
        warm = burst(5, "warm")
        await f.produce_at_once(warm)
        await f.wait_terminal(len(warm) * len(DESTINATIONS), timeout=300)
        events = burst(leads, "lead")
        ids = {str(e["event_id"]) for e in events}
        pids = [i.process.pid for i in f.instances if i.process is not None]
        broker = broker_pid(kafka)
        before, cpu = Requests.now(f), [cpu_seconds(p) for p in pids]
        busy, kafka_cpu, started = (
            cpu_seconds(),
            cpu_seconds(broker) if broker else 0.0,
            monotonic(),
        )
        await f.produce_at_once(events)
        await f.wait_terminal(len(events) * len(DESTINATIONS), timeout=600, among=ids)
        took = monotonic() - started
        services = sum(cpu_seconds(p) for p in pids) - sum(cpu)
        busy = cpu_seconds() - busy
        kafka_cpu = cpu_seconds(broker) - kafka_cpu if broker else float("nan")
        statuses = {f.terminal[(e, d)]["status"] for e in ids for d in DESTINATIONS}
        assert statuses == {"delivered"}, statuses
        return {
            "n": n,
            "split": split,
            "seconds": took,
            "per_record": (Requests.now(f) - before).per_record(len(events)),
            "rejected": sum(rejected(f).values()),
            "airtable_peak": airtable_peak(f),
            "hubspot_peak": hubspot_peak(f),
            "service_cpu_per_event_us": services / len(events) * 1e6,
            "note": f"work partitions per instance {'/'.join(map(str, split))}; CPU over "
            f"{took:.1f} s: services {services / took:.2f} cores, broker "
            f"{kafka_cpu / took:.2f}, machine {busy / took:.2f} of 2",
        }


async def stage1_cost(kafka: str, work: Path, n: int) -> float:
    """Stage 1 alone over `n` evaluations already in the topic: µs of CPU per event."""
    f = Fleet(kafka, work, orgs=ORGS, partitions=PARTITIONS)
    await create_input_topics(kafka, f.env, PARTITIONS)
    events = [make_event(org_id(k % ORGS)) for k in range(n)]
    for start in range(0, n, 4_000):
        await f.produce_at_once(events[start : start + 4_000])
    env = {"PATH": os.environ["PATH"], "KAFKA_BOOTSTRAP_SERVERS": kafka, **f.env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.lib.stage1_alone",
        str(n),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    result = orjson.loads(out.splitlines()[-1])
    return float(result["cpu_s"]) / float(result["events"]) * 1e6


def figures_of(runs: list[dict[str, Any]], leads: int) -> list[Figure]:
    one = runs[0]
    figures = []
    for r in runs:
        who = f"{r['n']} instance(s)"
        figures.append(
            Figure(
                SECTION,
                f"{who}: {ORGS} orgs x {leads} leads, all terminal in",
                r["seconds"],
                "s",
                ("<=", 2 * one["seconds"]),
                r["note"],
            )
        )
        for d in DESTINATIONS:
            target = ("<=", round(1.25 * one["per_record"][d], 4)) if r is not one else None
            name, value = f"{who}: {d} requests per record", r["per_record"][d]
            figures.append(Figure(SECTION, name, value, REQUESTS, target, plot=(d, r["n"])))
        figures.append(Figure(SECTION, f"{who}: 429s from the CRMs", r["rejected"], "", ("<=", 0)))
        figures.append(
            Figure(
                SECTION,
                f"{who}: busiest Airtable base, requests in 1 s",
                r["airtable_peak"],
                "",
                ("<=", 5),
            )
        )
        figures.append(
            Figure(
                SECTION,
                f"{who}: busiest HubSpot account, requests in 10 s",
                r["hubspot_peak"],
                "",
                ("<=", 190),
            )
        )
    return figures


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    sizes, leads = ((1, 3), 100) if quick else ((1, 2, 3, 6), 200)
    runs = []
    for n in sizes:
        (work / f"n{n}").mkdir(exist_ok=True)
        runs.append(await one_fleet(kafka, work / f"n{n}", n, leads))
    figures = figures_of(runs, leads)
    (work / "stage1").mkdir(exist_ok=True)
    events = STAGE1_EVENTS
    stage1_us = await stage1_cost(kafka, work / "stage1", events)
    whole_us = runs[0]["service_cpu_per_event_us"]
    note = f"stage 1 alone over {events:,} evaluations (bench/lib/stage1_alone.py)"
    figures += [
        Figure(SECTION, "extra stage (stage 1 alone): CPU per event", stage1_us, "µs", None, note),
        Figure(
            SECTION,
            "one instance, both stages: CPU per event",
            whole_us,
            "µs",
            None,
            "the timed burst of the 1-instance run, 3 destinations per event",
        ),
        Figure(
            SECTION,
            "extra stage: share of one instance's CPU per event",
            stage1_us / whole_us * 100,
            "%",
        ),
    ]
    return figures


if __name__ == "__main__":
    main(run, __doc__)
