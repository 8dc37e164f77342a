"""The moving parts of the chaos test (tests/integration/load/test_chaos.py): the evaluation
stream, and the stops we cause (kill -9, SIGTERM) told apart from exits we did not."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from devkit.factories import make_event
from devkit.fleet import Fleet, org_id
from devkit.instance import Instance

BASE = datetime(2026, 11, 1, tzinfo=UTC)
GAP_S = 60  # between a lead's successive new evaluations, on the evaluation clock


def stream(
    rng: random.Random, orgs: int, leads: int, seconds: int, per_s: int
) -> list[list[dict[str, Any]]]:
    """`per_s` events a second over `seconds`: new evaluations (later ones newer),
    and about one in seven a re-evaluation older than the lead's newest. Every
    evaluated_at is unique per lead, so none can pass for a redelivery."""
    clock = 0
    newest: dict[str, int] = {}
    used: defaultdict[str, set[int]] = defaultdict(set)
    ticks = []
    for _ in range(seconds):
        tick = []
        for _ in range(per_s):
            org = org_id(rng.randrange(orgs))
            lead = f"{org}-lead{rng.randrange(leads):03d}"
            older = lead in newest and rng.random() < 0.15
            if older:
                at = newest[lead] - rng.randint(1, GAP_S - 1)
                if at in used[lead]:
                    continue
            else:
                clock += GAP_S
                at = newest[lead] = clock
            used[lead].add(at)
            stamp = (BASE + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ")
            event = make_event(org, lead, evaluated_at=stamp)
            event["evaluation"]["trigger"] = "re_evaluation" if older else "batch"
            tick.append(event)
        ticks.append(tick)
    return ticks


class Exits:
    """Our stops, by kind, and every exit we did not cause (restarted, as Kubernetes
    would, so the run goes on and shows what else happens)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.ours: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.busy: set[str] = set()  # instances we are stopping or restarting
        self._seen: set[int] = set()  # pids whose exit is accounted for

    async def stop(self, instance: Instance, how: str) -> None:
        """`kill` (kill -9, exit -9) or `term` (SIGTERM: exit 0 within the drain)."""
        assert instance.process is not None
        self.busy.add(instance.name)
        self._seen.add(instance.process.pid)
        if not instance.running:
            self._exited(instance)
            return
        try:
            await (instance.kill() if how == "kill" else instance.terminate())
        except subprocess.TimeoutExpired:
            self.unexpected.append(f"{instance.name}: still running 60 s after SIGTERM")
            await instance.kill()
            return
        self.ours[how] += 1
        code = instance.process.returncode
        if code != (-9 if how == "kill" else 0):
            self.unexpected.append(f"{instance.name}: exit {code} after our {how}")

    async def restart(self, instance: Instance) -> None:
        instance.start()
        try:
            await instance.wait_ready(timeout=90)
        except AssertionError:  # died while starting: watch() records that exit
            if instance.running:
                self.unexpected.append(f"{instance.name}: not ready 90 s after a restart")
        finally:
            self.busy.discard(instance.name)

    async def watch(self) -> None:
        while True:
            for instance in self.fleet.instances:
                process = instance.process
                if instance.name in self.busy or process is None or instance.running:
                    continue
                if process.pid not in self._seen and len(self.unexpected) < 30:
                    self._seen.add(process.pid)
                    self._exited(instance)
                    self.busy.add(instance.name)
                    await self.restart(instance)
            await asyncio.sleep(0.5)

    def _exited(self, instance: Instance) -> None:
        assert instance.process is not None
        tail = instance.log.read_text(errors="replace")[-2500:]
        code = instance.process.returncode
        self.unexpected.append(f"{instance.name} exited on its own, code {code}; log tail:\n{tail}")


async def monkey(
    fleet: Fleet, exits: Exits, rng: random.Random, until: float, log: list[str]
) -> None:
    """Until `until` (monotonic): every 6-18 s, stop one instance (kill -9; one of the
    first three stops is a SIGTERM), wait 0-4 s, start it again and wait till ready."""
    term_at, stops = rng.randrange(3), 0
    started = monotonic()
    while True:
        await asyncio.sleep(rng.uniform(6, 18))
        if monotonic() > until:
            return
        instance = rng.choice(fleet.instances)
        if instance.name in exits.busy:
            continue
        how = "term" if stops == term_at else "kill"
        log.append(f"{monotonic() - started:.0f}s {how} {instance.name}")
        await exits.stop(instance, how)
        stops += 1
        await asyncio.sleep(rng.uniform(0, 4))
        await exits.restart(instance)
