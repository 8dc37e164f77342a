"""Chaos (issue 19): 12 orgs with Salesforce, HubSpot and Airtable each, random
faults per destination (devkit/sandboxes/chaos.py: 5xx, 429 with odd
Retry-After values, answers past the timeout, malformed bodies), two instances
in one consumer group killed (-9, once SIGTERM) and restarted at random, under
a steady stream of evaluations; then a quiet tail in which every fault stops
and everything must finish. The real process, the real broker, the HTTPS
sandboxes (Airtable at its 5 requests/s per base).

At the end: every event has a terminal status per destination or is in the DLQ;
each CRM holds the newest evaluation of each lead whose newest was delivered (one
record per lead); no process exited but by our kills, SIGTERM gave exit 0, and no
log holds a traceback.

The seed is printed; `CHAOS_SEED=<seed>` replays the fault schedule and the kinds
drawn, the stream and the kills (not the exact requests they hit). The test's
tmp_path keeps faults.jsonl, events.jsonl, statuses.jsonl, the logs, and each
live instance's /metrics and /v1/destinations at the end of the tail.

Settings: DESTINATION_TIMEOUT_S 4 s (slow answers come 5-7 s late) and a 2-10 s
retry backoff, so that retries fit in the run; the rest are the defaults.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from time import monotonic
from typing import Any

import orjson
import pytest

from devkit.fleet import DESTINATIONS, Fleet
from devkit.sandboxes.chaos import Chaos
from tests.integration.load.chaos_checks import (
    dlq_events,
    dump,
    gauges,
    missing,
    not_newest,
    terminal,
    tracebacks,
    where,
)
from tests.integration.load.chaos_parts import Exits, monkey, stream

pytestmark = pytest.mark.load

ORGS, LEADS = 12, 20  # leads per org
CHAOS_S, PER_S = 140, 12  # the stream (events a second), while faults and kills go on
TAIL_S = 140  # faults stopped: every pair must be terminal by then
TIMEOUT_S = 4.0
ENV = {
    "DESTINATION_TIMEOUT_S": str(TIMEOUT_S),
    "RETRY_BACKOFF_BASE_S": "2",
    "RETRY_BACKOFF_MAX_S": "10",
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
}
PREFIX = {"salesforce": "/services/data/", "hubspot": "/crm/", "airtable": "/v0/"}


async def send(f: Fleet, ticks: list[list[dict[str, Any]]]) -> None:
    started = monotonic()
    for n, tick in enumerate(ticks):
        await f.produce(tick)
        await asyncio.sleep(max(0.0, n + 1 - (monotonic() - started)))


def tally(f: Fleet) -> str:
    firsts = [terminal(f, p)[0] for p in f.history if terminal(f, p)]
    every = [s for p in f.history for s in terminal(f, p)]
    failed = Counter(
        (s["destination"], s["error"]["code"]) for s in every if s["status"] == "failed"
    )
    return (
        f"first terminal status per pair: "
        f"{dict(Counter((s['destination'], s['status']) for s in firsts))}\n"
        f"every terminal status: "
        f"{dict(Counter((s['destination'], s['status'], s['reason']) for s in every))}\n"
        f"failed codes: {dict(failed)}"
    )


async def test_chaos_every_event_ends_and_the_crms_hold_the_newest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
    print(f"\nchaos seed {seed} (CHAOS_SEED={seed} replays it); files in {tmp_path}")
    wall = monotonic()
    f = Fleet(kafka_bootstrap, tmp_path, orgs=ORGS, airtable_rate=5, env=ENV)
    sandboxes = {"salesforce": f.sf, "hubspot": f.hs, "airtable": f.at}
    chaos = {
        name: Chaos(name, seed, prefix=PREFIX[name], timeout_s=TIMEOUT_S, period_s=CHAOS_S)
        for name in DESTINATIONS
    }
    ticks = stream(random.Random(f"{seed}:stream"), ORGS, LEADS, CHAOS_S, PER_S)
    events = [e for tick in ticks for e in tick]
    async with f:
        await f.add_instance()
        for name, sandbox in sandboxes.items():
            sandbox.chaos = chaos[name]
            chaos[name].begin()
        exits, stops = Exits(f), list[str]()
        watching = asyncio.create_task(exits.watch())
        sending = asyncio.create_task(send(f, ticks))
        until = monotonic() + CHAOS_S - 15
        await monkey(f, exits, random.Random(f"{seed}:monkey"), until, stops)
        await sending
        for c in chaos.values():
            c.end()
        tail = monotonic()
        dlq: dict[str, str] = {}
        while (left := missing(f, events, dlq)) and monotonic() < tail + TAIL_S:
            await asyncio.sleep(2)
            if len(left) < 50:
                dlq = await dlq_events(f)
        tail_s = monotonic() - tail
        await asyncio.sleep(3)  # redeliveries still in flight: idempotent, or a finding
        dlq = await dlq_events(f)
        left = missing(f, events, dlq)
        crms = {d: not_newest(f, events, d, ORGS) for d in DESTINATIONS}
        backlog = await gauges(f, tmp_path)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        ours = dict(exits.ours)
        for instance in f.instances:  # SIGTERM: each must exit 0
            await exits.stop(instance, "term")
        traced = tracebacks(f)
        errors = f.log_lines("error")

    dump(tmp_path, events, f)
    faults = [{"crm": n, **asdict(i)} for n, c in chaos.items() for i in c.injected]
    (tmp_path / "faults.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in faults))
    print(
        f"{len(events)} events x 3 destinations, {ORGS} orgs; wall {monotonic() - wall:.0f} s, "
        f"tail {tail_s:.0f} s\nfaults: { {n: dict(c.counts()) for n, c in chaos.items()} }\n"
        f"stops: {ours} ({'; '.join(stops)}); exits we did not cause: {len(exits.unexpected)}\n"
        f"{tally(f)}\nDLQ: {dict(Counter(dlq.values()))}; pairs with no terminal status: "
        f"{len(left)}\nCRM holds the newest (leads checked, wrong): "
        f"{ {d: (n, len(w)) for d, (n, w) in crms.items()} }\n"
        f"each instance at the end of the tail: {backlog}\n"
        f"ERROR log lines: {len(errors)}; lines with a Traceback: {len(traced)}"
    )
    problems = []
    if exits.unexpected:
        problems.append("exits we did not cause:\n" + "\n---\n".join(exits.unexpected[:5]))
    if traced:
        problems.append(
            f"{len(traced)} log lines with a Traceback, e.g.:\n" + "\n".join(traced[:5])
        )
    if left:
        problems.append(where(f, events, left))
    for destination, (_, wrong) in crms.items():
        if wrong:
            problems.append(
                f"{destination} does not hold the newest of {len(wrong)} leads: {wrong[:5]}"
            )
    assert not problems, f"seed {seed}:\n" + "\n\n".join(problems)
