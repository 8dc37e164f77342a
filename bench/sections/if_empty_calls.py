"""Section 2's price of `write: if_empty` (contract §4a): API requests per record with
the reasoning written only while empty, against the same run without it.

The 200-org run of section 1 again (the same sizes, fresh topics and sandboxes), with
every org's target set to `reasoning: {write: if_empty}`; a first pass over new leads
and a second over the same leads (record cache warm). Where a destination already
looks a record up, the current value comes in that lookup (Salesforce SOQL, HubSpot
search, Airtable filterByFormula); the extra reads are the records no lookup read:
HubSpot contacts upserted by email, Airtable upserts, and in the second pass records
named by id from the cache. Judged: at most one more batched read per write batch
(the bound section 2 sets for lookups).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.figures import Figure
from bench.lib import call_counts, fleet_run
from bench.lib.fleet_run import Pass, Run
from bench.sections import throughput
from devkit.factories import DEFAULT_TARGETS
from devkit.fleet import LEAD

S = "2. API calls"
UNIT = "per 1k records"
KEEP = {"reasoning": {"write": "if_empty"}}


def if_empty(_: int, destination: str) -> dict[str, Any]:
    target = LEAD if destination == "salesforce" else DEFAULT_TARGETS[destination][0]
    return {"targets": [{**target, "field_options": KEEP}]}


def per_1k(p: Pass, destination: str) -> tuple[float, int]:
    """Every request to the destination (lookup, search, write) per 1,000 records."""
    n = sum(p.calls[destination, kind] for kind in call_counts.KINDS if kind != "token")
    return 1000 * n / max(1, p.delivered.get(destination, 0)), n


def compare(plain: Run, kept: Run, bounds: dict[str, float]) -> list[Figure]:
    out: list[Figure] = []
    many = f"{kept.orgs} orgs x {kept.events // kept.orgs}"
    assert plain.repeat is not None and kept.repeat is not None
    for label, without, with_ in (
        ("first pass", plain.first, kept.first),
        ("same leads again", plain.repeat, kept.repeat),
    ):
        for d, bound in bounds.items():
            base, _ = per_1k(without, d)
            value, n = per_1k(with_, d)
            note = f"{n} requests; without if_empty {base:.3g}: +{value - base:.3g} reads"
            name = f"{d} requests with if_empty, {many}, {label}"
            out.append(Figure(S, name, value, UNIT, ("<=", round(base + bound, 2)), note))
    return out


async def run(kafka: str, work: Path, quick: bool, bounds: dict[str, float]) -> list[Figure]:
    """`bounds`: per destination, the lookup requests per 1k records section 2 allows."""
    plain = await fleet_run.measure(kafka, work, **throughput.main_run(quick))
    scenario = {**throughput.main_run(quick), "baselines_too": False, "sample": False}
    kept = await fleet_run.measure(
        kafka, work, **{**scenario, "label": "if-empty"}, per_org=if_empty
    )
    return compare(plain, kept, bounds)
