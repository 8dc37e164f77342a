"""2. API calls per delivered record, per destination and kind, under load.

Read from section 1's runs (run here when section 1 was not), each a first pass
(new leads, record cache cold) and a second pass over the same leads (cache
warm), counted in the sandboxes, which log every request:

- 1 org x 20,000 (Salesforce, HubSpot): lanes can fill whole batches, so it is
  judged against the targets (a request carries at most 200 / 100 records);
- 200 orgs x 100 (all three): Airtable is judged here (10 records a request).
  Salesforce and HubSpot are judged against one request per org and kind, since
  an org's 100 leads are all a batch can hold.

The second pass is produced while the service runs, so its batches close on
BATCH_LINGER_MS as the events arrive: its writes are reported, not judged.
`write: if_empty`'s extra reads are measured on the 200-org run (if_empty_calls.py).
"""

from __future__ import annotations

from pathlib import Path

from bench.figures import Figure
from bench.lib import call_counts, fleet_run
from bench.lib.fleet_run import Pass
from bench.sections import if_empty_calls, throughput

S = "2. API calls"
UNIT = "per 1k records"
# Requests per 1,000 delivered records: writes and lookups ("batched the same way").
TARGETS = {"salesforce": 1000 / 150, "hubspot": 1000 / 80, "airtable": 1000 / 9}
WARM_LOOKUPS = 10.0  # per 1,000 records: "close to zero" once the cache holds the lead


def figures_of(p: Pass, label: str, bounds: dict[str, float], warm: bool) -> list[Figure]:
    shares = call_counts.per_record(p.calls, p.delivered)
    out = []
    for destination, bound in bounds.items():
        if not p.delivered.get(destination):
            continue
        for kind in call_counts.KINDS:
            target: tuple[str, float] | None = None
            if kind == "lookup" or (kind == "write" and not warm):
                target = ("<=", round(bound, 2))
            if kind in ("lookup", "search") and warm:
                target = ("<=", WARM_LOOKUPS)
            value = shares[f"{destination} {kind}"] * 1000
            note = f"{p.calls[destination, kind]} requests, {p.delivered[destination]} records"
            name = f"{destination} {kind}, {label}"
            out.append(Figure(S, name, value, UNIT, target, note))
    return out


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    one = await fleet_run.measure(kafka, work, **throughput.one_org_run(quick))
    main = await fleet_run.measure(kafka, work, **throughput.main_run(quick))
    assert one.repeat is not None and main.repeat is not None
    big = f"1 org x {one.events}"
    many = f"{main.orgs} orgs x {main.events // main.orgs}"
    # One request per org and kind when an org has fewer leads than a full batch.
    per_org = 1000 * main.orgs / main.events
    full = {d: TARGETS[d] for d in ("salesforce", "hubspot")}
    lanes = {d: max(TARGETS[d], per_org) for d in ("salesforce", "hubspot")}
    floor = [
        Figure(
            S,
            f"floor {d} write, {many} (reference)",
            1000 * n / main.events,
            UNIT,
            note=f"{n} requests: one per org, fetch and batch of the maximum",
        )
        for d in TARGETS
        if (n := main.floor_calls[d, "write"])
    ]
    return [
        *floor,
        *await if_empty_calls.run(kafka, work, quick, lanes | {"airtable": TARGETS["airtable"]}),
        *figures_of(one.first, f"{big}, first pass", full, False),
        *figures_of(one.repeat, f"{big}, same leads again", full, True),
        *figures_of(
            main.first, f"{many}, first pass", lanes | {"airtable": TARGETS["airtable"]}, False
        ),
        *figures_of(
            main.repeat,
            f"{many}, same leads again",
            lanes | {"airtable": TARGETS["airtable"]},
            True,
        ),
    ]
