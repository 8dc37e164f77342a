"""What the chaos test (tests/integration/load/test_chaos.py) checks at the end, and what it keeps
for a post-mortem: terminal statuses per pair, the DLQ, what each CRM sandbox
holds per lead, tracebacks in the logs, each instance's own view of its backlog."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka.partitioner import murmur2

from devkit.fleet import DESTINATIONS, Fleet, base_id
from devkit.harness import read_topic

TERMINAL = ("delivered", "skipped", "failed")
Pair = tuple[str, str]  # (event id, destination)


def terminal(f: Fleet, pair: Pair) -> list[dict[str, Any]]:
    return [s for s in f.history.get(pair, []) if s["status"] in TERMINAL]


async def dlq_events(f: Fleet) -> dict[str, str]:
    """Event id -> error.code of every DLQ record."""
    out = {}
    for record in await read_topic(f.kafka, f.env["TOPIC_DLQ"], timeout_s=5):
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        try:
            out[str(orjson.loads(record.value)["event_id"])] = headers.get("error.code", "?")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            out[f"unreadable@{record.offset}"] = headers.get("error.code", "?")
    return out


def missing(f: Fleet, events: list[dict[str, Any]], dlq: dict[str, str]) -> list[Pair]:
    """(event, destination) pairs with no terminal status, of events not in the DLQ."""
    return [
        (str(e["event_id"]), d)
        for e in events
        for d in DESTINATIONS
        if str(e["event_id"]) not in dlq and not terminal(f, (str(e["event_id"]), d))
    ]


def where(f: Fleet, events: list[dict[str, Any]], left: list[Pair]) -> str:
    """Where the pairs with no terminal status are: by destination, partition and org,
    and the last status each got (`none`: not a single one)."""
    by_id = {str(e["event_id"]): e for e in events}
    tails: Counter[str] = Counter()
    for pair in left:
        history = f.history.get(pair)
        last: dict[str, Any] = history[-1] if history else {"status": "none", "error": None}
        tails[f"{last['status']} {(last['error'] or {}).get('code')}"] += 1
    partitions = Counter(partition_of(by_id[e], f.partitions) for e, _ in left)
    orgs = Counter(by_id[e]["org_id"] for e, _ in left)
    return (
        f"{len(left)} pairs with no terminal status, not in the DLQ; by destination "
        f"{dict(Counter(d for _, d in left))}; by partition {dict(sorted(partitions.items()))}; "
        f"by org {dict(sorted(orgs.items()))}; last status {dict(tails)}; e.g. {left[:3]}"
    )


def instant(value: Any) -> datetime | None:
    """A CRM's date-time value (ISO 8601 with Z, +00:00 or +0000; epoch ms) in UTC."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).astimezone(UTC)


def held(f: Fleet, destination: str, orgs: int) -> dict[str, list[Any]]:
    """Lead email -> the evaluated_at of every record the CRM holds for it."""
    out: defaultdict[str, list[Any]] = defaultdict(list)
    if destination == "salesforce":
        for lead in f.sf.records("Lead").values():
            out[str(lead.get("Email"))].append(lead.get("TS_Evaluated_At__c"))
    elif destination == "hubspot":
        for contact in f.hs.records("contacts"):
            props = contact.properties
            out[str(props.get("email"))].append(props.get("ts_evaluated_at"))
    else:
        for i in range(orgs):
            for row in f.at.table("Contacts", base_id=base_id(i)):
                fields = row["fields"] or {}
                out[str(fields.get("Email"))].append(fields.get("TS Evaluated At"))
    return out


def not_newest(
    f: Fleet, events: list[dict[str, Any]], destination: str, orgs: int
) -> tuple[int, list[str]]:
    """(leads checked, leads wrong): a lead is checked when its newest evaluation was
    delivered (or skipped as a duplicate: delivered before a crash); it is wrong when
    the CRM holds another evaluation for it, or none, or two records."""
    newest: dict[str, dict[str, Any]] = {}
    for e in events:
        email, at = e["lead"]["email"], e["evaluation"]["evaluated_at"]
        if email not in newest or at > newest[email]["evaluation"]["evaluated_at"]:
            newest[email] = e
    crm = held(f, destination, orgs)
    checked, wrong = 0, []
    for email, e in sorted(newest.items()):
        statuses = terminal(f, (str(e["event_id"]), destination))
        if not any(s["status"] == "delivered" or s["reason"] == "duplicate" for s in statuses):
            continue
        checked += 1
        want = e["evaluation"]["evaluated_at"]
        if [instant(v) for v in crm.get(email, [])] != [instant(want)]:
            said = [(s["status"], s["reason"]) for s in statuses]
            wrong.append(f"{email}: newest {want} {said}, the CRM holds {crm.get(email)}")
    return checked, wrong


def tracebacks(f: Fleet) -> list[str]:
    return [
        f"{i.name}: {line[:1500]}"
        for i in f.instances
        for line in i.log.read_text(errors="replace").splitlines()
        if "Traceback" in line
    ]


def partition_of(event: dict[str, Any], partitions: int) -> int:
    key = f"{event['org_id']}:{event['lead']['lead_id']}".encode()
    return int(murmur2(key) & 0x7FFFFFFF) % partitions  # the Java client's, and aiokafka's


def dump(path: Path, events: list[dict[str, Any]], f: Fleet) -> None:
    """events.jsonl (with each event's partition) and statuses.jsonl, for a post-mortem."""
    with (path / "events.jsonl").open("wb") as out:
        for e in events:
            out.write(orjson.dumps({**e, "partition": partition_of(e, f.partitions)}) + b"\n")
    with (path / "statuses.jsonl").open("wb") as out:
        for statuses in f.history.values():
            out.write(b"".join(orjson.dumps(s) + b"\n" for s in statuses))


async def gauges(f: Fleet, path: Path) -> dict[str, dict[str, float]]:
    """What each running instance says of its backlog and health; its /metrics and
    /v1/destinations saved to `path` for a post-mortem."""
    out: dict[str, dict[str, float]] = {}
    names = ("consumer_lag", "inflight_deliveries", "retry_pending", "circuit_open")
    for i in f.instances:
        if not i.running:
            continue
        try:
            out[i.name] = {name: await i.metric(name) for name in names}
            async with aiohttp.ClientSession() as http:
                for probe in ("healthz", "readyz"):
                    async with http.get(f"http://127.0.0.1:{i.port}/{probe}") as r:
                        out[i.name][probe] = r.status
                for page in ("metrics", "v1/destinations"):
                    async with http.get(f"http://127.0.0.1:{i.port}/{page}") as r:
                        text = await r.read()
                    (path / f"{i.name}-{page.replace('/', '-')}.txt").write_bytes(text)
        except aiohttp.ClientError as exc:
            out[i.name] = {type(exc).__name__: 0.0}
    return out
