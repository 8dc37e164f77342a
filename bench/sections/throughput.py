"""1. End-to-end throughput: the real process, broker and HTTPS sandboxes.

200 orgs x 100 evaluations, all three destinations, sandboxes unthrottled; in the
same run and over the same events and sandboxes, the floor (an aiokafka loop
that writes each batch in one request and produces three statuses per event)
and Kafka alone (the same loop without the writes), in rounds (each on fresh
topics and sandboxes). Then 1 org (Salesforce and HubSpot: Airtable's 5 requests/s
per base would bound it) and 1,000 orgs. CPU: the service's process, the
floor's, and ours (the sandboxes live here); py-spy samples the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.figures import Figure
from bench.lib import fleet_run
from bench.sections.throughput_figures import (
    EV,
    S,
    anomalies,
    baseline_points,
    profile_figures,
    rounds_figures,
)

# (orgs, events): the main run, one org, many orgs
FULL = {"main": (200, 20_000), "one": (1, 20_000), "many": (1000, 20_000)}
QUICK = {"main": (20, 2_000), "one": (1, 2_000), "many": (100, 2_000)}
ROUNDS = 3  # of the main run (1 with --quick); the last one also re-evaluates the leads


def sizes(quick: bool) -> dict[str, tuple[int, int]]:
    return QUICK if quick else FULL


def main_run(quick: bool, round_: int | None = None) -> dict[str, Any]:
    """A round of the 200-org run; the last (the default) is the one section 2 reads."""
    orgs, n = sizes(quick)["main"]
    last = round_ is None
    return {
        "orgs": orgs,
        "events": n,
        "baselines_too": True,
        "repeat": last,
        "sample": last,
        "label": "" if last else f"round{round_}",
    }


def one_org_run(quick: bool) -> dict[str, Any]:
    orgs, n = sizes(quick)["one"]
    return {
        "orgs": orgs,
        "events": n,
        "destinations": ("salesforce", "hubspot"),
        "baselines_too": True,  # the plot's floor and Kafka alone at 1 org
        "repeat": True,
    }


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    size, rounds = sizes(quick), 1 if quick else ROUNDS
    runs = [await fleet_run.measure(kafka, work, **main_run(quick, i)) for i in range(rounds - 1)]
    runs.append(last := await fleet_run.measure(kafka, work, **main_run(quick)))
    figures = rounds_figures(runs)
    assert last.repeat is not None
    again = "same leads again, record cache warm, under py-spy"
    figures.append(Figure(S, f"service: {last.orgs} orgs, {again}", last.repeat.rate, EV))
    one = await fleet_run.measure(kafka, work, **one_org_run(quick))
    for d, rate in one.first.per_destination.items():
        figures.append(Figure(S, f"service: 1 org x {one.events}, {d}", rate, EV))
    note = "Salesforce and HubSpot (Airtable: 50 records/s per base)"
    both = Figure(S, "service: 1 org, both", one.first.rate, EV, plot=("service", 1), note=note)
    orgs, n = size["many"]
    many = await fleet_run.measure(kafka, work, orgs=orgs, events=n, baselines_too=True)
    what = f"service: {orgs} orgs x {n // orgs} evaluations, 3 destinations"
    return [
        *figures,
        both,
        Figure(S, what, many.first.rate, EV, plot=("service", orgs), note=anomalies(many.first)),
        *baseline_points(one),
        *baseline_points(many),
        *profile_figures(last),
    ]
