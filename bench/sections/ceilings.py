"""3. Rate-limit ceilings: how close the service gets to each API's limit.

The sandboxes enforce HubSpot's 190 requests per rolling 10 s (one account) and
Airtable's 5 requests per second per base (a 429 then locks the base out for
30 s). The ceiling in records/s is the request limit times the records a request
can carry: HubSpot 19 x 100 = 1,900, Airtable 5 x 10 = 50 per base. A backlog
bigger than the measurement keeps the service at its limit. Records written are
counted at the sandbox (successful write requests) over whole rate windows that
start one window after the first request, since an empty window lets a client
spend all of it at once (HubSpot: 190 requests, then nothing for 10 s); 429s
over the whole run. The three scenarios run at once, each with its own process
and sandboxes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

from bench.figures import Figure
from bench.lib.fleet_run import events_for
from devkit.fleet import Fleet

S = "3. ceilings"
HUBSPOT_CEILING = 190 / 10 * 100  # records/s
AIRTABLE_CEILING = 5 * 10  # records/s per base


@dataclass(frozen=True)
class Ceiling:
    records_per_s: float
    requests_per_s: float
    rejected: int  # 429s over the whole run


def _hits(f: Fleet) -> list[tuple[float, int, int]]:
    """(arrival, status, records written) of every API request at the fleet's sandboxes."""
    hits = [(c.at, c.status, writes(c.path, c.inputs)) for c in f.hs.calls]
    return hits + [(h.at, h.status, writes(h.path, h.records, h.method)) for h in f.at.hits]


async def _measure(f: Fleet, orgs: int, ceiling: float, api_window_s: float, n: int) -> Ceiling:
    """Counts over `n` of the API's rate windows, one window after the first request."""
    length = n * api_window_s
    await f.launch()
    # Enough backlog for the first window's burst, the measured ones, and a margin.
    producing = asyncio.create_task(
        f.produce(events_for(orgs, int(ceiling * (length + 2 * api_window_s + 5))))
    )
    while not _hits(f):
        await asyncio.sleep(0.05)
    start = min(at for at, _, _ in _hits(f)) + api_window_s - 0.05 * api_window_s
    await asyncio.sleep(start + length + 0.1 - monotonic())
    await producing
    hits = _hits(f)
    inside = [(status, n) for at, status, n in hits if start <= at < start + length]
    records = sum(n for status, n in inside if status < 300)
    rejected = sum(1 for _, status, _ in hits if status == 429)
    return Ceiling(records / length, len(inside) / length, rejected)


def writes(path: str, records: int, method: str = "POST") -> int:
    """Records a request wrote: HubSpot batch writes and Airtable writes; else 0."""
    if "/batch/" in path and not path.endswith("/read"):
        return records
    return records if path.startswith("/v0/") and method in ("POST", "PATCH", "PUT") else 0


async def hubspot(kafka: str, work: Path, windows: int) -> Ceiling:
    f = Fleet(kafka, work / "hubspot", orgs=1, destinations=("hubspot",))
    try:
        await f.prepare()
        f.hs.budget.max_requests, f.hs.budget.window_s = 190, 10.0  # HubSpot's own limits
        f.hs.budget.search_per_s = 4
        return await _measure(f, 1, HUBSPOT_CEILING, 10.0, windows)
    finally:
        await f.__aexit__(None, None, None)


async def airtable(kafka: str, work: Path, bases: int, seconds: int) -> Ceiling:
    # 5 requests per second per base: Airtable's limit (the fleet's default is unthrottled)
    f = Fleet(kafka, work / f"at{bases}", orgs=bases, destinations=("airtable",), airtable_rate=5)
    try:
        await f.prepare()
        return await _measure(f, bases, AIRTABLE_CEILING * bases, 1.0, seconds)
    finally:
        await f.__aexit__(None, None, None)


def _limit(
    who: str, share_of: str, c: Ceiling, ceiling: float, requests: int, digits: int
) -> list[Figure]:
    """Delivered, as a share of the ceiling (records/s), and 429s."""
    sent = f"{c.requests_per_s:.{digits}f} requests/s of {requests}"
    return [
        Figure(S, f"{who}: delivered", c.records_per_s, "records/s"),
        Figure(
            S,
            f"{share_of}: share of {ceiling:,.0f} records/s",
            c.records_per_s / ceiling,
            target=(">=", 0.9),
            note=sent,
        ),
        Figure(S, f"{share_of}: 429s", c.rejected, target=("<=", 0.0)),
    ]


def figures(hs: Ceiling, one: Ceiling, four: Ceiling) -> list[Figure]:
    scale = four.records_per_s / (4 * one.records_per_s) if one.records_per_s else 0.0
    return [
        *_limit("HubSpot, 1 account", "HubSpot", hs, HUBSPOT_CEILING, 19, 1),
        *_limit("Airtable, 1 base", "Airtable 1 base", one, AIRTABLE_CEILING, 5, 2),
        *_limit("Airtable, 4 bases", "Airtable 4 bases", four, 4 * AIRTABLE_CEILING, 20, 2),
        Figure(S, "Airtable: 4-base rate / (4 x 1-base rate)", scale, target=(">=", 0.9)),
    ]


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    # HubSpot: 10-s windows; Airtable: 1-s windows (the same span of time)
    windows = 1 if quick else 3
    for name in ("hubspot", "at1", "at4"):
        (work / name).mkdir(parents=True, exist_ok=True)
    hs, one, four = await asyncio.gather(
        hubspot(kafka, work, windows),
        airtable(kafka, work, 1, 10 * windows),
        airtable(kafka, work, 4, 10 * windows),
    )
    return figures(hs, one, four)
