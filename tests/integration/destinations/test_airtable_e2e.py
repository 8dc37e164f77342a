"""Airtable end to end: the real service on a real broker, writing to the HTTPS
sandbox; statuses are read back from the status topic.

The first tests use the real destinations (`build_all`, production settings). Those
that need other knobs (a 20/s ceiling so that 2,000 events take 10 s, a 2 s penalty
instead of 30 s) give the harness their own AirtableDestination with options.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox, Column
from service.destinations.airtable import AirtableDestination
from service.destinations.base import Destination, DestinationContext
from tests.unit.destinations.airtable.test_ratelimit import provoke_penalty

OTHER_BASE = "appOtherBase00002"


@pytest.fixture
async def at(tmp_path: Path) -> AsyncIterator[AirtableSandbox]:
    tls = tmp_path / "tls"
    tls.mkdir()
    async with AirtableSandbox(tls, rate_limit=5) as sandbox:
        yield sandbox


def harness(
    kafka: str,
    tmp_path: Path,
    at: AirtableSandbox,
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> ServiceHarness:
    """The service; with `options`, an Airtable destination built with them."""
    env = {"DESTINATION_CA_FILE": str(at.ca_file), **(env or {})}
    if options is None:
        return ServiceHarness(kafka, tmp_path, env=env)
    destinations: dict[str, Destination] = {}  # filled once the harness's metrics exist
    h = ServiceHarness(kafka, tmp_path, env=env, destinations=destinations)
    destinations["airtable"] = AirtableDestination(
        DestinationContext(h.settings, h.metrics, {"airtable": options})
    )
    return h


async def connect(
    h: ServiceHarness, at: AirtableSandbox, org: str = "org_1", base: str | None = None, **cfg: Any
) -> None:
    h.write_secret(f"{org}-airtable", at.credentials(base_id=base))
    await h.put_config(make_config("airtable", org_id=org, **cfg))


async def send_fast(h: ServiceHarness, events: list[dict[str, Any]]) -> None:
    """Produce without waiting for each ack, so the lane sees them together."""
    topic = h.settings.topic_evaluations
    for e in events:
        await h.producer.send(
            topic, orjson.dumps(e), f"{e['org_id']}:{e['lead']['lead_id']}".encode()
        )
    await h.producer.flush()


def by_event(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["event_id"]: s for s in statuses if s["destination"] == "airtable"}


def target(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULT_TARGETS["airtable"][0], **overrides}


async def test_mapping_upsert_lookup_and_update_by_id(
    kafka_bootstrap: str, tmp_path: Path, at: AirtableSandbox
) -> None:
    [by_id] = at.seed("Contacts", [{"Email": "crm@example.com"}])
    [known] = at.seed("Contacts", [{"Email": "o'brien}@example.com"}], base_id=OTHER_BASE)
    async with harness(kafka_bootstrap, tmp_path, at) as h:
        await connect(h, at)  # create on: upsert on Email
        await connect(h, at, "org_2", OTHER_BASE, targets=[target(create_if_missing=False)])
        new = make_event(lead_id="ada", score="warm", reasoning="Read the pricing page.")
        with_id = make_event(lead_id="crm", crm_ids={"airtable": {"Contacts": by_id}})
        odd = make_event("org_2", lead_id="odd", email="o'brien}@example.com")
        stranger = make_event("org_2", lead_id="stranger")
        for event in (new, with_id, odd, stranger):
            await h.send_event(event)
        first = by_event(await h.wait_statuses(4))
        newer = make_event(lead_id="ada", score="hot")
        await h.send_event(newer)
        await h.wait_statuses(5)
        statuses = by_event(h.statuses)

    created = statuses[new["event_id"]]
    assert created["status"] == "delivered" and created["attempts"] == 1
    [ref] = created["records"]
    assert (ref["object"], ref["action"]) == ("Contacts", "created")
    assert statuses[newer["event_id"]]["records"] == [{**ref, "action": "updated"}]
    row = next(r for r in at.table("Contacts") if r["id"] == ref["id"])
    assert row["fields"] == {
        "Email": "ada@example.com",
        "First Name": "Ada",
        "TS Score": "hot",
        "TS Reasoning": "Visited pricing 4x this week; ICP match.",
        "TS Evaluated At": newer["evaluation"]["evaluated_at"],
    }
    assert first[with_id["event_id"]]["records"] == [
        {"object": "Contacts", "id": by_id, "action": "updated"}
    ]
    assert first[odd["event_id"]]["records"] == [
        {"object": "Contacts", "id": known, "action": "updated"}
    ]
    assert first[stranger["event_id"]]["status"] == "skipped"
    assert first[stranger["event_id"]]["reason"] == "record_not_found"
    assert len(at.table("Contacts", base_id=OTHER_BASE)) == 1  # create off: nothing created


async def test_422_fails_only_its_record_and_long_text_is_truncated(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tables = {"Contacts": {"Email": Column("email"), "TS Score": Column("singleSelect", ("hot",)),
                           "TS Reasoning": Column("multilineText")}}  # fmt: skip
    async with (
        AirtableSandbox(tmp_path, tables=tables) as at,
        harness(kafka_bootstrap, tmp_path, at) as h,
    ):
        only = target(fields={"score": "TS Score", "reasoning": "TS Reasoning"}, create_fields={})
        await connect(h, at, targets=[only])
        events = [make_event(lead_id=f"s{i}", score="warm" if i == 4 else "hot") for i in range(10)]
        events.append(make_event(lead_id="long", reasoning="r" * 150_000))
        await send_fast(h, events)
        statuses = by_event(await h.wait_statuses(11))
        truncations = h.metric("truncations_total", destination="airtable", field="reasoning")

    bad = statuses[events[4]["event_id"]]
    assert bad["status"] == "failed"
    assert bad["error"]["code"] == "invalid_value"  # contract §4a
    assert bad["error"]["http_status"] == 422 and bad["error"]["retryable"] is False
    assert "select option" in bad["error"]["message"]
    others = [statuses[e["event_id"]]["status"] for i, e in enumerate(events) if i != 4]
    assert others == ["delivered"] * 10
    long_row = next(r for r in at.table("Contacts") if r["fields"]["Email"] == "long@example.com")
    assert long_row["fields"]["TS Reasoning"] == "r" * 100_000
    assert truncations == 1


async def test_1000_events_in_at_most_100_writes_and_2000_without_a_429(
    kafka_bootstrap: str, tmp_path: Path, at: AirtableSandbox
) -> None:
    """Production code with a 20/s ceiling on both sides (5/s would take 40 s)."""
    ceiling = 20
    at.rate_limit = ceiling
    options = {"requests_per_second": ceiling, "max_batch_size": 1000}  # fewer lane gaps
    # The 1,000 events reach the lane from 6 partitions over tens of milliseconds:
    # a linger longer than that makes them one lane batch, so the count below
    # measures the 10-per-request packing, not where a 20 ms linger happened to end.
    linger = {"BATCH_LINGER_MS": "1000"}
    async with harness(kafka_bootstrap, tmp_path, at, options, linger) as h:
        await connect(h, at)
        await send_fast(h, [make_event(lead_id=f"b{i}") for i in range(1000)])
        first = await h.wait_statuses(1000, timeout=60)
        writes_for_1000 = len(at.calls("PATCH"))
        at.hits.clear()
        await send_fast(h, [make_event(lead_id=f"r{i}") for i in range(2000)])
        await h.wait_statuses(3000, timeout=90)
        statuses = by_event(h.statuses)
    assert [s["status"] for s in first] == ["delivered"] * 1000
    assert writes_for_1000 <= 100
    assert sum(s["status"] == "delivered" for s in statuses.values()) == 3000
    assert at.calls(status=429) == []
    sent = at.calls("PATCH")
    # Sustained rate over whole windows: requests 0..180 span nine of them. The
    # tail says nothing about the limiter: a last partial lane batch adds a
    # request or two in a window of their own.
    whole = 9 * ceiling
    rate = whole / (sent[whole].at - sent[0].at)
    print(f"1,000 events: {writes_for_1000} writes; 2,000 events: {rate:.2f} requests/s")
    assert ceiling * 0.9 <= rate <= ceiling, f"{rate:.2f} requests/s"


async def test_penalty_holds_back_its_base_only(
    kafka_bootstrap: str, tmp_path: Path, at: AirtableSandbox
) -> None:
    at.penalty_s = 2.0
    async with harness(kafka_bootstrap, tmp_path, at, {"penalty_s": 2.0}) as h:
        await connect(h, at)
        await connect(h, at, "org_2", OTHER_BASE)
        await provoke_penalty(at)  # another app spent base A's budget: 429 and penalty
        penalized = make_event(lead_id="waits")
        free = make_event("org_2", lead_id="free")
        await h.send_event(penalized)
        await h.wait_until(lambda: any(x.status == 429 and x.method == "PATCH" for x in at.hits))
        await h.send_event(free)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await h.wait_until(lambda: free["event_id"] in by_event(h.statuses), 10, "org_2")
        free_after = loop.time() - start
        await h.wait_until(lambda: penalized["event_id"] in by_event(h.statuses), 20, "org_1")
        waited = loop.time() - start
        statuses = by_event(h.statuses)
    assert free_after < 1.0  # another base is not held back by base A's penalty
    assert waited > 1.0  # base A waited out its penalty in the lane
    assert statuses[penalized["event_id"]]["status"] == "delivered"
    assert statuses[free["event_id"]]["status"] == "delivered"
    base_a = [x for x in at.hits if x.base == at.base_id and x.method == "PATCH"]
    assert [x.status for x in base_a] == [429, 200]  # nothing sent into the penalty
    assert base_a[1].at - base_a[0].at >= 2.0 - 0.1
