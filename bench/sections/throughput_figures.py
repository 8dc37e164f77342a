"""Section 1's figures from its runs: pure functions over bench/lib/fleet_run.py results."""

from __future__ import annotations

from statistics import median

from bench.figures import Figure
from bench.lib import profile
from bench.lib.fleet_run import Pass, Run

S = "1. throughput"
P = "1. profile"
EV = "events/s"


def anomalies(p: Pass) -> str:
    return ", ".join(f"{n} {what}" for what, n in p.not_delivered.items())


def _cores(cpu_s: float, seconds: float) -> float:
    return cpu_s / seconds if seconds else 0.0


def rounds_figures(runs: list[Run]) -> list[Figure]:
    """Service, floor and Kafka alone over the same events, round by round: medians,
    and the median of the per-round ratios (a noisy neighbour hits a round's pair alike)."""
    floors = [r.floor for r in runs if r.floor is not None]
    kafkas = [r.kafka for r in runs if r.kafka is not None]
    assert len(floors) == len(kafkas) == len(runs)
    ratios = [r.first.rate / f.rate for r, f in zip(runs, floors, strict=True)]
    over_kafka = [r.first.rate / k.rate for r, k in zip(runs, kafkas, strict=True)]
    each = " ".join(f"{x:.2f}" for x in ratios)
    orgs, n, one = runs[0].orgs, runs[0].events, runs[-1].first
    what = f"{orgs} orgs x {n // orgs} evaluations, 3 destinations"
    failed = sum(f.failed_writes for f in floors)
    service = median(r.first.rate for r in runs)
    figures = [
        Figure(S, f"service: {what}", service, EV, plot=("service", orgs), note=anomalies(one)),
        Figure(
            S,
            "floor: aiokafka + one write per batch",
            median(f.rate for f in floors),
            EV,
            note=f"{failed} writes failed" if failed else "",
            plot=("floor", orgs),
        ),
        Figure(
            S,
            "Kafka alone: aiokafka + 3 statuses per event",
            median(k.rate for k in kafkas),
            EV,
            plot=("Kafka alone", orgs),
        ),
        Figure(S, "service / floor", median(ratios), "", (">=", 0.5), f"rounds: {each}"),
        Figure(S, "service / Kafka alone", median(over_kafka)),
    ]
    for d, rate in one.per_destination.items():
        figures.append(Figure(S, f"service: {d} done at (last round)", rate, EV))
    return figures + cpu_figures(runs[-1])


def baseline_points(run: Run) -> list[Figure]:
    """The floor and Kafka alone at a run's size, so the plot has them at every point."""
    assert run.floor is not None and run.kafka is not None
    what = f"{run.orgs} orgs x {run.events // run.orgs}"
    return [
        Figure(S, f"floor: {what}", run.floor.rate, EV, plot=("floor", run.orgs)),
        Figure(S, f"Kafka alone: {what}", run.kafka.rate, EV, plot=("Kafka alone", run.orgs)),
    ]


def cpu_figures(run: Run) -> list[Figure]:
    one, n, floor = run.first, run.events, run.floor
    assert floor is not None
    here = "the sandboxes run in the benchmark's process, with the fleet's status reader"
    return [
        Figure(S, "service process CPU", _cores(one.service_cpu_s, one.seconds), "cores"),
        Figure(
            S,
            "sandboxes CPU, service run",
            _cores(one.bench_cpu_s, one.seconds),
            "cores",
            note=here,
        ),
        Figure(S, "floor process CPU", _cores(floor.cpu_s, floor.seconds), "cores"),
        Figure(
            S, "sandboxes CPU, floor run", _cores(floor.sandboxes_cpu_s, floor.seconds), "cores"
        ),
        Figure(S, "service CPU per event", one.service_cpu_s / n * 1e6, "µs"),
        Figure(S, "floor CPU per event", floor.cpu_s / n * 1e6, "µs"),
        Figure(S, "sandboxes CPU per event, service run", one.bench_cpu_s / n * 1e6, "µs"),
        Figure(S, "sandboxes CPU per event, floor run", floor.sandboxes_cpu_s / n * 1e6, "µs"),
        Figure(S, "broker CPU per event, service run", one.broker_cpu_s / n * 1e6, "µs"),
        Figure(S, "broker CPU per event, floor run", run.floor_broker_cpu_s / n * 1e6, "µs"),
        *budget_figures(run),
    ]


def budget_figures(run: Run) -> list[Figure]:
    """On 2 shared cores the rates go about as the inverse of the CPU every process
    spends per event, so the floor run's total says what 0.8 allows the service run."""
    one, n, floor = run.first, run.events, run.floor
    assert floor is not None
    service_run = (one.service_cpu_s + one.bench_cpu_s + one.broker_cpu_s) / n * 1e6
    floor_run = (floor.cpu_s + floor.sandboxes_cpu_s + run.floor_broker_cpu_s) / n * 1e6
    return [
        Figure(
            S,
            "all processes' CPU per event, service run",
            service_run,
            "µs",
            note="service + sandboxes (+ status reader) + broker",
        ),
        Figure(
            S,
            "all processes' CPU per event, floor run",
            floor_run,
            "µs",
            note="floor + sandboxes + broker",
        ),
        Figure(
            S,
            "floor run / service run CPU per event",
            floor_run / service_run,
            note="about what the ratio is when the cores are the limit",
        ),
        Figure(
            S,
            "service run CPU per event for a 0.8 ratio",
            floor_run / 0.8,
            "µs",
            note=f"now {service_run:.0f} µs",
        ),
    ]


def profile_figures(run: Run) -> list[Figure]:
    if run.profile is None or run.profile_error:
        return [Figure(P, "py-spy profile", 0, note=run.profile_error or "not taken")]
    samples, own, inclusive = profile.top(run.profile, 8)
    note = f"second pass of the last round; {run.profile}"
    figures = [Figure(P, "busy samples (py-spy, 97 Hz)", samples, "", note=note)]
    figures += [Figure(P, f"self: {name}", share * 100, "%") for name, share in own]
    figures += [Figure(P, f"incl.: {name}", share * 100, "%") for name, share in inclusive[:6]]
    return figures
