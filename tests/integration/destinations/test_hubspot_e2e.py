"""HubSpot end to end: the real service on a real broker, writing to the HTTPS
sandbox; statuses are read back from the status topic.

Most tests use the real destinations (build_all). Tests that need other knobs
(a shortened rate window, a short daily probe) give the harness their own
HubSpotDestination, built on the harness's settings and metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import hubspot_config
from service.destinations.base import Destination, DestinationContext
from service.destinations.hubspot import HubSpotDestination
from tests.unit.destinations.hubspot.test_limits import BUDGET, utilisation


@pytest.fixture
async def hs(tmp_path: Path) -> AsyncIterator[HubSpotSandbox]:
    tls = tmp_path / "tls"
    tls.mkdir()
    async with HubSpotSandbox(tls) as sandbox:
        yield sandbox


def harness(
    kafka: str,
    tmp_path: Path,
    hs: HubSpotSandbox,
    options: dict[str, Any] | None = None,
    **env: str,
) -> ServiceHarness:
    """The service; with `options`, a HubSpot destination built with them."""
    env = {"DESTINATION_CA_FILE": str(hs.ca_file), **env}
    if options is None:
        return ServiceHarness(kafka, tmp_path, env=env)
    destinations: dict[str, Destination] = {}  # filled once the harness's metrics exist
    h = ServiceHarness(kafka, tmp_path, env=env, destinations=destinations)
    ctx = DestinationContext(h.settings, h.metrics, {"hubspot": options})
    destinations["hubspot"] = HubSpotDestination(ctx)
    return h


async def connect(h: ServiceHarness, hs: HubSpotSandbox, org: str = "org_1", **cfg: Any) -> None:
    h.write_secret(f"{org}-hubspot", hs.credentials())
    await h.put_config(hubspot_config(org_id=org, **cfg))


async def send_fast(h: ServiceHarness, events: list[dict[str, Any]]) -> None:
    """Produce without waiting for each ack, so the lane sees them together."""
    topic = h.settings.topic_evaluations
    for e in events:
        key = f"{e['org_id']}:{e['lead']['lead_id']}".encode()
        await h.producer.send(topic, orjson.dumps(e), key)
    await h.producer.flush()


def by_event(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["event_id"]: s for s in statuses}


def refs(status: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["object"], r["action"]) for r in status["records"]}


async def test_contacts_companies_creation_and_failures(
    kafka_bootstrap: str, tmp_path: Path, hs: HubSpotSandbox
) -> None:
    company = hs.seed("companies", name="Analytical", domain="analytical.example")
    known = [hs.seed("contacts", email=f"known{n}@example.com") for n in range(4)]
    hs.store.reject = lambda obj, props: (
        ("INVALID_OPTION", "poison is not allowed") if props.get("ts_score") == "cold" else None
    )
    events = {
        "created": make_event(email="new@example.com", reasoning="r" * 70_000),
        "updated": make_event(email="known0@example.com", domain="unknown.example"),
        "by_id": make_event(crm_ids={"hubspot": {"contacts": known[1]}}),
        "poison": make_event(crm_ids={"hubspot": {"contacts": known[2]}}, score="cold"),
        "by_id_2": make_event(crm_ids={"hubspot": {"contacts": known[3]}}),
        "deleted": make_event(crm_ids={"hubspot": {"contacts": "424242"}}),
    }
    stranger = make_event("org_2", email="stranger@example.com")
    async with harness(kafka_bootstrap, tmp_path, hs) as h:
        await connect(h, hs)
        await connect(h, hs, "org_2", contacts={"create_if_missing": False}, propensity=False)
        await send_fast(h, [*events.values(), stranger])
        statuses = by_event(await h.wait_statuses(7))
        text = h.metrics_text()
    got = {name: statuses[e["event_id"]] for name, e in events.items()}
    assert refs(got["created"]) == {("contacts", "created"), ("companies", "updated")}
    assert refs(got["updated"]) == {("contacts", "updated")}  # no company for that domain
    assert {got[k]["status"] for k in ("by_id", "by_id_2")} == {"delivered"}
    assert got["poison"]["status"] == "failed"  # isolated by splitting the batch/update
    assert got["poison"]["error"]["code"] == "invalid_option"
    # A crm id HubSpot no longer has falls back to the email (create on: upserted).
    assert got["deleted"]["status"] == "delivered"
    assert ("contacts", "created") in refs(got["deleted"])
    assert statuses[stranger["event_id"]]["reason"] == "record_not_found"
    assert hs.find("contacts", "email", "stranger@example.com") is None
    new = hs.find("contacts", "email", "new@example.com")
    assert new is not None and len(new.properties["ts_reasoning"]) == 65_536
    assert new.properties["firstname"] == "Ada"
    assert hs.store.records["companies"][company].properties["ts_propensity"] == "high"
    assert 'truncations_total{destination="hubspot",field="reasoning"} 1.0' in text
    assert 'propensity_unmatched_total{destination="hubspot"} 1.0' in text


async def test_1000_contact_events_take_at_most_10_upserts(
    kafka_bootstrap: str, tmp_path: Path, hs: HubSpotSandbox
) -> None:
    events = [make_event() for _ in range(1000)]
    # A linger long enough for the lane to gather the whole burst into one batch.
    async with harness(kafka_bootstrap, tmp_path, hs, BATCH_LINGER_MS="1500") as h:
        await connect(h, hs, propensity=False)
        await send_fast(h, events)
        statuses = await h.wait_statuses(1000, timeout=60)
    assert {s["status"] for s in statuses} == {"delivered"}
    upserts = [c for c in hs.calls if c.path.endswith("/contacts/batch/upsert")]
    assert len(upserts) <= 10 and sum(c.inputs for c in upserts) == 1000
    assert len(hs.records("contacts")) == 1000


async def test_3000_events_use_the_window_without_a_429(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The 190 / 10 s budget, shortened for the test: sandbox and destination
    both get 10 requests per 2 s. 3,000 events = 30 upserts of 100 = 6 s of budget."""
    tls = tmp_path / "tls"
    tls.mkdir()
    async with HubSpotSandbox(tls, **BUDGET) as hs:
        events = [make_event() for _ in range(3000)]
        async with harness(kafka_bootstrap, tmp_path, hs, BUDGET, BATCH_LINGER_MS="1000") as h:
            await connect(h, hs, propensity=False)
            await send_fast(h, events)
            statuses = await h.wait_statuses(3000, timeout=80)
        assert {s["status"] for s in statuses} == {"delivered"}
        assert sum(hs.budget.rejected.values()) == 0
        assert all(c.status == 200 for c in hs.calls)
        assert utilisation(hs, "/batch/upsert", **BUDGET) >= 0.9


async def test_daily_limit_waits_for_the_reset_without_spending_attempts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    async with HubSpotSandbox(tls, daily_limit=0) as hs:
        options = {"daily_retry_s": 1.0}
        async with harness(kafka_bootstrap, tmp_path, hs, options, MAX_ATTEMPTS="1") as h:
            await connect(h, hs, propensity=False)
            event = make_event()
            await h.send_event(event)
            await h.wait_until(lambda: hs.budget.rejected["DAILY"] >= 1, 30, "a DAILY 429")
            await asyncio.sleep(2.5)  # blocked: at most one probe a second reaches HubSpot
            hs.budget.daily_limit = 1000  # the account's day resets
            statuses = await h.wait_statuses(1, timeout=30)
            progress = [s for s in h.statuses if s["status"] == "retrying"]
        (done,) = statuses
        assert done["status"] == "delivered" and done["attempts"] == 1
        assert progress and progress[0]["error"]["code"] == "quota_exhausted"
        assert 1 <= hs.budget.rejected["DAILY"] <= 5
        assert len(hs.calls) == hs.budget.rejected["DAILY"] + 1


async def test_auth_failure_then_a_rotated_token(
    kafka_bootstrap: str, tmp_path: Path, hs: HubSpotSandbox
) -> None:
    wrong = "pat-na1-revoked-0000-1111-2222-3333"
    async with harness(kafka_bootstrap, tmp_path, hs) as h:
        h.write_secret("org_1-hubspot", {**hs.credentials(), "access_token": wrong})
        await h.put_config(hubspot_config())
        await h.send_event(make_event())
        (failed,) = await h.wait_statuses(1)
        h.write_secret("org_1-hubspot", hs.credentials())  # the secret is rotated
        await asyncio.sleep(0.05)  # a distinct mtime
        h.write_secret("org_1-hubspot", hs.credentials())
        await h.send_event(make_event())
        statuses = await h.wait_statuses(2)
    assert failed["status"] == "failed" and failed["error"]["code"] == "auth_failed"
    assert failed["error"]["http_status"] == 401 and wrong not in orjson.dumps(failed).decode()
    assert statuses[1]["status"] == "delivered"
