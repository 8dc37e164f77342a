"""One end-to-end scenario: N evaluations over some orgs through the real process.

`measure()` pre-produces the events, optionally runs Kafka alone and the floor
over them first (bench/lib/floor_loop.py, same events, same sandboxes), then starts
`python -m service` and times it from ready to the last terminal status, with
the requests the sandboxes answered; then, optionally, a second pass over the
same leads (the record cache warm), with py-spy sampling the service.

Sections 1 and 2 read the same 200-org run: the result is kept per scenario, so
`make bench` runs it once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

from bench.lib import call_counts, cpu, profile
from bench.lib.floor import Baseline, run_floor
from devkit.factories import make_event
from devkit.fleet import DESTINATIONS, Fleet, org_id

PROFILE_S = 10.0


@dataclass
class Pass:
    rate: float  # events/s, every (event, destination) pair terminal
    per_destination: dict[str, float]  # events/s until that destination's last status
    delivered: dict[str, int]
    calls: Counter[tuple[str, str]]
    seconds: float = 0.0
    service_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0  # sandboxes + the fleet's status reader
    broker_cpu_s: float = 0.0  # the local Tansu broker, when it is ours
    not_delivered: Counter[str] = field(default_factory=Counter)


@dataclass
class Run:
    orgs: int
    events: int
    first: Pass
    repeat: Pass | None = None
    floor: Baseline | None = None
    kafka: Baseline | None = None
    floor_calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    floor_broker_cpu_s: float = 0.0
    profile: Path | None = None
    profile_error: str | None = None


_runs: dict[tuple[Any, ...], Run] = {}


def events_for(orgs: int, n: int, leads: list[str] | None = None) -> list[dict[str, Any]]:
    """n events round-robin over the orgs; `leads` re-evaluates those lead ids."""
    if leads is None:
        return [make_event(org_id(i % orgs)) for i in range(n)]
    return [make_event(org_id(i % orgs), leads[i]) for i in range(n)]


async def _pass(
    f: Fleet,
    ids: set[str],
    started: float,
    windows: tuple[cpu.Window, cpu.Window],
    since: call_counts.Cursor,
) -> Pass:
    """Waits for every pair of these events; rates from `started` (monotonic);
    CPU over (the service's window, the broker's)."""
    await f.wait_terminal(len(ids) * len(f.destinations), timeout=900, among=ids)
    wall, mine, service = windows[0].stop()
    broker = windows[1].stop()[2]
    mine_pairs = [(k, s) for k, s in f.terminal.items() if k[0] in ids]
    ends = {d: max(f.arrived[k] for k, _ in mine_pairs if k[1] == d) for d in f.destinations}
    delivered = Counter(k[1] for k, s in mine_pairs if s["status"] == "delivered")
    other = Counter(f"{s['status']} {s['reason']}" for _, s in mine_pairs)
    other.pop("delivered None", None)
    return Pass(
        rate=len(ids) / (max(ends.values()) - started),
        per_destination={d: len(ids) / (end - started) for d, end in ends.items()},
        delivered=dict(delivered),
        calls=call_counts.tally(f, since),
        seconds=wall,
        service_cpu_s=service,
        bench_cpu_s=mine,
        broker_cpu_s=broker,
        not_delivered=other,
    )


async def _none() -> None:
    return None


def _ids(events: list[dict[str, Any]]) -> set[str]:
    return {str(e["event_id"]) for e in events}


async def measure(
    kafka: str,
    work: Path,
    *,
    orgs: int,
    events: int,
    destinations: tuple[str, ...] = DESTINATIONS,
    baselines_too: bool = False,
    repeat: bool = False,
    sample: bool = False,
    label: str = "",
    per_org: Callable[[int, str], dict[str, Any]] | None = None,
) -> Run:
    """`repeat`: a second pass over the same leads; `sample`: py-spy during it;
    `label` tells rounds of the same scenario apart (and scenarios with `per_org`
    config overrides, see devkit/fleet.py, from those without)."""
    key = (kafka, orgs, events, destinations, baselines_too, repeat, sample, label)
    if key in _runs:
        return _runs[key]
    tmp = work / f"orgs{orgs}-{len(destinations)}d{label}"
    tmp.mkdir(parents=True, exist_ok=True)
    f = Fleet(kafka, tmp, orgs=orgs, destinations=destinations, per_org=per_org)
    try:
        await f.prepare()
        # Salesforce indexes Email; without it each lookup would scan the sandbox's
        # whole store, and the floor's 20,000 Leads with it (the sandboxes share our core).
        f.sf.store.index("Lead", "Email")
        first = events_for(orgs, events)
        await f.produce(first)
        kafka_alone = floor = None
        floor_calls: Counter[tuple[str, str]] = Counter()
        broker, floor_broker = cpu.broker_pid(kafka), 0.0
        if baselines_too:
            kafka_alone = await run_floor(f, events, crm=False, name="kafka-alone")
            since, on_broker = call_counts.cursor(f), cpu.Window(broker)
            floor = await run_floor(f, events, crm=True, name="floor")
            floor_calls, floor_broker = call_counts.tally(f, since), on_broker.stop()[2]
        since = call_counts.cursor(f)
        await f.launch()
        assert f.process is not None
        # Timed from ready: the events wait in the topic, as they did for the floor.
        started, window = monotonic(), (cpu.Window(f.process.pid), cpu.Window(broker))
        run = Run(orgs, events, await _pass(f, _ids(first), started, window, since))
        run.floor, run.kafka, run.floor_calls = floor, kafka_alone, floor_calls
        run.floor_broker_cpu_s = floor_broker
        if repeat:
            again = events_for(orgs, events, [str(e["lead"]["lead_id"]) for e in first])
            since, started = call_counts.cursor(f), monotonic()
            window = (cpu.Window(f.process.pid), cpu.Window(broker))
            run.profile = tmp / "service.pyspy.txt" if sample else None
            sampling = asyncio.create_task(
                profile.record(f.process.pid, PROFILE_S, run.profile) if run.profile else _none()
            )
            await f.produce(again)
            run.repeat = await _pass(f, _ids(again), started, window, since)
            run.profile_error = await sampling
    finally:
        await f.__aexit__(None, None, None)
    _runs[key] = run
    return run
