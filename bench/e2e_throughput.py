"""1. End-to-end throughput: the real process, broker and HTTPS sandboxes.

200 orgs x 100 evaluations, all three destinations, sandboxes unthrottled; in the
same run and over the same events and sandboxes, the floor (an aiokafka loop
that writes each batch in one request and produces three statuses per event)
and Kafka alone (the same loop without the writes). Then 1 org (Salesforce and
HubSpot: Airtable's 5 requests/s per base would bound it) and 1,000 orgs.
CPU: the service's process, the floor's, and ours (the sandboxes live here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import fleet_run, profile
from bench.figures import Figure
from bench.fleet_run import Pass, Run

S = "1. throughput"
P = "1. profile"
EV = "events/s"
# (orgs, events): the main run, one org, many orgs
FULL = {"main": (200, 20_000), "one": (1, 20_000), "many": (1000, 20_000)}
QUICK = {"main": (20, 2_000), "one": (1, 2_000), "many": (100, 2_000)}


def sizes(quick: bool) -> dict[str, tuple[int, int]]:
    return QUICK if quick else FULL


def main_run(quick: bool) -> dict[str, Any]:
    """The 200-org run that sections 1 and 2 share (measured once)."""
    orgs, n = sizes(quick)["main"]
    return {"orgs": orgs, "events": n, "baselines_too": True, "repeat": True, "sample": True}


def one_org_run(quick: bool) -> dict[str, Any]:
    orgs, n = sizes(quick)["one"]
    return {"orgs": orgs, "events": n, "destinations": ("salesforce", "hubspot"), "repeat": True}


def _anomalies(p: Pass) -> str:
    return ", ".join(f"{n} {what}" for what, n in p.not_delivered.items())


def main_figures(run: Run) -> list[Figure]:
    one, orgs, n = run.first, run.orgs, run.events
    assert run.floor is not None and run.kafka is not None
    floor, kafka = run.floor, run.kafka
    what = f"{orgs} orgs x {n // orgs} evaluations, 3 destinations"
    ratio_note = "target 0.5; 0.8 is the next step (see BENCHMARKS.md)"
    floor_note = f"{floor.failed_writes} writes failed" if floor.failed_writes else ""
    return [
        Figure(S, f"service: {what}", one.rate, EV, plot=("service", orgs), note=_anomalies(one)),
        Figure(S, "floor: aiokafka + one write per batch", floor.rate, EV, note=floor_note),
        Figure(S, "Kafka alone: aiokafka + 3 statuses per event", kafka.rate, EV),
        Figure(S, "service / floor", one.rate / floor.rate, "", (">=", 0.5), ratio_note),
        Figure(S, "service / Kafka alone", one.rate / kafka.rate),
        Figure(S, "service process CPU", one.service_cpu_s / one.seconds, "cores"),
        Figure(
            S,
            "sandboxes (+ status reader) CPU, service run",
            one.bench_cpu_s / one.seconds,
            "cores",
            note="the sandboxes run in the benchmark's process",
        ),
        Figure(S, "floor process CPU", floor.cpu_s / floor.seconds, "cores"),
        Figure(S, "sandboxes CPU, floor run", floor.sandboxes_cpu_s / floor.seconds, "cores"),
        Figure(S, "service CPU per event", one.service_cpu_s / n * 1e6, "µs"),
        Figure(S, "floor CPU per event", floor.cpu_s / n * 1e6, "µs"),
        Figure(S, "sandbox CPU per event, service run", one.bench_cpu_s / n * 1e6, "µs"),
        Figure(S, "sandbox CPU per event, floor run", floor.sandboxes_cpu_s / n * 1e6, "µs"),
    ]


def profile_figures(run: Run) -> list[Figure]:
    if run.profile is None or run.profile_error:
        return [Figure(P, "py-spy profile", 0, note=run.profile_error or "not taken")]
    samples, own, inclusive = profile.top(run.profile, 8)
    note = f"{samples} samples, second pass; file {run.profile.name}"
    figures = [Figure(P, "busy samples (py-spy, 97 Hz)", samples, "", note=note)]
    figures += [Figure(P, f"self: {name}", share * 100, "%") for name, share in own]
    figures += [Figure(P, f"incl.: {name}", share * 100, "%") for name, share in inclusive[:6]]
    return figures


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    size = sizes(quick)
    orgs, n = size["main"]
    main = await fleet_run.measure(kafka, work, **main_run(quick))
    figures = main_figures(main)
    assert main.repeat is not None
    again = "same leads again, record cache warm, under py-spy"
    figures.append(Figure(S, f"service: {orgs} orgs, {again}", main.repeat.rate, EV))
    orgs, n = size["one"]
    one = await fleet_run.measure(kafka, work, **one_org_run(quick))
    for d, rate in one.first.per_destination.items():
        figures.append(Figure(S, f"service: 1 org x {n}, {d}", rate, EV))
    note = "Salesforce and HubSpot (Airtable: 50 records/s per base)"
    figures.append(
        Figure(S, "service: 1 org, both", one.first.rate, EV, plot=("service", 1), note=note)
    )
    orgs, n = size["many"]
    many = await fleet_run.measure(kafka, work, orgs=orgs, events=n)
    what = f"service: {orgs} orgs x {n // orgs} evaluations, 3 destinations"
    figures.append(
        Figure(S, what, many.first.rate, EV, plot=("service", orgs), note=_anomalies(many.first))
    )
    return figures + profile_figures(main)
