"""6. Scale-out: 1, 2 and 3 instances in one consumer group over 6 partitions.

    python -m bench.scaleout [--quick]

Each run has fresh topics and group, 100 orgs and the three HTTPS sandboxes (in
this process). Once every instance runs and the partitions have settled, a burst
of events is produced and timed until every (event, destination) pair has a
terminal status. Throughput is reported against one instance, with the partitions
and events each instance took, the CRM requests per event, and where the CPU
went: on 2 cores the service processes, the sandboxes (this process) and the
broker all compete. Events are keyed org:lead, so every instance holds a lane
for every org: more instances split each org's flow into smaller batches.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from time import monotonic

from bench.e2e import broker_pid, cpu_seconds, main, produce_apart
from bench.figures import Figure
from bench.instances import Instances
from tests.factories import make_event
from tests.fleet import DESTINATIONS, Fleet, org_id
from tests.sandboxes.airtable import Hit

SECTION = "6. scale-out"
ORGS, PARTITIONS = 100, 6
WARM = 1_000  # a first burst, untimed: TLS connections, lanes, measured rates


def crm_requests(f: Fleet) -> int:
    return len(f.sf.calls) + len(f.hs.calls) + len(f.at.hits)


def peak_per_base(hits: list[Hit]) -> int:
    """Most Airtable requests one base got within any 1 s (Airtable allows 5): each
    instance paces every base on its own, so N instances may send up to N x 5."""
    times: dict[str, list[float]] = defaultdict(list)
    for h in hits:
        times[h.base].append(h.at)
    peak = 0
    for ts in times.values():
        ts.sort()
        first = 0
        for last, at in enumerate(ts):
            while ts[first] <= at - 1.0:
                first += 1
            peak = max(peak, last - first + 1)
    return peak


async def one_run(kafka: str, work: Path, n: int, events: int) -> tuple[float, list[Figure]]:
    async with Fleet(kafka, work, orgs=ORGS, partitions=PARTITIONS) as f, Instances(f, n - 1) as i:
        split = await i.settled(PARTITIONS)
        await f.produce([make_event(org_id(k % ORGS)) for k in range(WARM)])
        await f.wait_terminal(len(DESTINATIONS) * WARM, timeout=300)  # connections, lanes
        batch = [make_event(org_id(k % ORGS)) for k in range(events)]
        broker, requests = broker_pid(kafka), crm_requests(f)
        cpu = [cpu_seconds(p) for p in i.pids]
        here, machine, started = cpu_seconds(os.getpid()), cpu_seconds(), monotonic()
        kafka_cpu = cpu_seconds(broker) if broker else 0.0
        await produce_apart(kafka, f.env["TOPIC_EVALUATIONS"], batch)
        await f.wait_terminal(len(DESTINATIONS) * (WARM + events), timeout=600)
        took = monotonic() - started
        requests = crm_requests(f) - requests
        services = sum(cpu_seconds(p) for p in i.pids) - sum(cpu)
        bench, busy = cpu_seconds(os.getpid()) - here, cpu_seconds() - machine
        kafka_cpu = cpu_seconds(broker) - kafka_cpu if broker else float("nan")
        peak = peak_per_base(f.at.hits)
        shares = "/".join(f"{c:,.0f}" for c in await i.consumed())
        assert {s["status"] for s in f.terminal.values()} == {"delivered"}
    rate = events / took
    note = (
        f"{rate:,.0f} events/s; partitions per instance {'/'.join(map(str, split))}, "
        f"events consumed {shares}; CPU over {took:.1f} s: services {services / took:.2f} cores, "
        f"sandboxes+producer+reader {bench / took:.2f}, broker {kafka_cpu / took:.2f}, "
        f"machine {busy / took:.2f} of 2"
    )
    return rate, [
        Figure(SECTION, f"{n} instance(s): events/s", rate, "ev/s", None, note),
        Figure(SECTION, f"{n} instance(s): most partitions on one", max(split), "", None),
        Figure(SECTION, f"{n} instance(s): machine CPU busy", busy / took, "cores"),
        Figure(SECTION, f"{n} instance(s): CRM requests per event", requests / events),
        Figure(SECTION, f"{n} instance(s): Airtable peak req/s to a base", peak, "", ("<=", 5)),
    ]


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    events = 2_000 if quick else 15_000
    figures: list[Figure] = []
    base = 0.0
    for n in (1, 3) if quick else (1, 2, 3):
        (work / f"n{n}").mkdir(exist_ok=True)
        rate, found = await one_run(kafka, work / f"n{n}", n, events)
        base = base or rate
        figures += found
        if n > 1:
            name = f"{n} instances: throughput / one instance"
            figures.append(Figure(SECTION, name, rate / base, "x", None, f"{events:,} events"))
    return figures


if __name__ == "__main__":
    main(run, __doc__)
