"""GET /v1/destinations: the rows, their sources, the filters, and no credentials."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from service.api.endpoints import HttpServer, make_app
from service.api.outcomes import LastOutcomes
from service.api.states import CircuitState, ServiceStates
from service.config.store import ConfigStore
from service.destinations.base import Outcome
from service.destinations.memory import MemoryDestination
from service.errors import PermanentError, TransientError
from service.metrics import Metrics
from service.models import RecordRef

SECRET = {"access_token": "tok-" + "s" * 24}


def store_with(*configs: dict[str, Any]) -> ConfigStore:
    store = ConfigStore(Metrics())
    for config in configs:
        store.apply_object(config)
    return store


def delivered() -> Outcome:
    return Outcome.delivered([RecordRef(object="Lead", id="00Q1", action="updated")])


def test_last_outcomes_keep_the_last_error_and_delivery_and_stay_bounded() -> None:
    outcomes = LastOutcomes(max_entries=2)
    outcomes.record("org_1", "salesforce", delivered(), "2026-11-22T10:00:00Z")
    failed = Outcome.from_error(PermanentError("no such field", code="invalid_field"))
    outcomes.record("org_1", "salesforce", failed, "2026-11-22T10:00:05Z")
    entry = outcomes.get("org_1", "salesforce")
    assert entry is not None
    assert (entry.status, entry.status_at) == ("failed", "2026-11-22T10:00:05Z")
    assert (entry.error_code, entry.error_at) == ("invalid_field", "2026-11-22T10:00:05Z")
    assert entry.delivered_at == "2026-11-22T10:00:00Z"  # a failure does not erase it

    outcomes.record("org_1", "salesforce", Outcome.skipped("stale_evaluation"), "t3")
    assert outcomes.get("org_1", "salesforce").error_code == "invalid_field"  # type: ignore[union-attr]
    outcomes.record("org_2", "hubspot", delivered(), "t4")
    outcomes.record("org_1", "salesforce", delivered(), "t5")  # now the most recent
    outcomes.record("org_3", "airtable", delivered(), "t6")  # evicts the oldest: org_2
    assert len(outcomes) == 2
    assert outcomes.get("org_2", "hubspot") is None
    assert outcomes.get("org_1", "salesforce") is not None


def test_rows_join_configs_lanes_outcomes_and_circuit_and_filter() -> None:
    store = store_with(
        make_config("salesforce", "org_b", version=4),
        make_config("hubspot", "org_a", version=2, send_evaluations=False),
        make_config("salesforce", "org_a", version=7),
    )
    outcomes = LastOutcomes()
    retrying = Outcome.from_error(TransientError("503 from Salesforce", code="server_error"))
    outcomes.record("org_a", "salesforce", retrying, "2026-11-22T10:00:00Z")
    depths = {("org_a", "salesforce"): 12}
    states = ServiceStates(
        store,
        outcomes,
        lane_depth=lambda org, dest: depths.get((org, dest), 0),
        circuit=lambda c: "open" if c.org_id == "org_b" else CircuitState.CLOSED.value,
    )
    rows = states.states()
    assert [(r.org_id, r.destination) for r in rows] == [
        ("org_a", "hubspot"),
        ("org_a", "salesforce"),
        ("org_b", "salesforce"),
    ]
    hubspot, salesforce, other = rows
    assert (hubspot.config_version, hubspot.active, hubspot.last_status) == (2, False, None)
    assert (salesforce.config_version, salesforce.active, salesforce.lane_depth) == (7, True, 12)
    assert (salesforce.last_status, salesforce.last_error_code) == ("retrying", "server_error")
    assert salesforce.last_delivery_at is None
    assert (salesforce.circuit, other.circuit) == ("closed", "open")
    assert [r.org_id for r in states.states(org_id="org_b")] == ["org_b"]
    assert [r.org_id for r in states.states(destination="salesforce")] == ["org_a", "org_b"]
    assert states.states(org_id="org_a", destination="airtable") == []


def test_without_a_breaker_the_circuit_reads_closed() -> None:
    states = ServiceStates(store_with(make_config()), LastOutcomes())
    (row,) = states.states()
    assert (row.circuit, row.lane_depth) == ("closed", 0)


async def test_endpoint_serves_rows_filters_and_no_credentials_ref() -> None:
    store = store_with(make_config("salesforce", "org_a"), make_config("hubspot", "org_b"))
    server = HttpServer(
        make_app(
            Metrics(),
            lambda: (True, "ok"),
            lambda: (True, "ok"),
            ServiceStates(store, LastOutcomes()),
        ),
        0,
        host="127.0.0.1",
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}/v1/destinations"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base) as resp:
                assert resp.status == 200
                body = await resp.read()
            async with session.get(base, params={"org": "org_b"}) as resp:
                only_b = await resp.json()
            async with session.get(base, params={"org": "org_b", "destination": "x"}) as resp:
                none = await resp.json()
    finally:
        await server.stop()
    rows = orjson.loads(body)["destinations"]
    assert [(r["org_id"], r["destination"]) for r in rows] == [
        ("org_a", "salesforce"),
        ("org_b", "hubspot"),
    ]
    assert set(rows[0]) == {
        "org_id",
        "destination",
        "config_version",
        "active",
        "integration_status",
        "lane_depth",
        "circuit",
        "last_status",
        "last_status_at",
        "last_error_code",
        "last_error_at",
        "last_delivery_at",
    }
    assert b"credentials" not in body and b"org_a-salesforce" not in body
    assert [r["org_id"] for r in only_b["destinations"]] == ["org_b"]
    assert none == {"destinations": []}


async def test_status_endpoint_on_the_running_service(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Lane depth while a slow write is under way, then the last outcomes per destination."""
    release = asyncio.Event()

    class Gated(MemoryDestination):
        async def write(self, batch: Any) -> list[Outcome]:
            await release.wait()
            return await super().write(batch)

    def reject(_: object) -> PermanentError:
        return PermanentError("INVALID_FIELD: No such column", code="invalid_field")

    dests = {
        "salesforce": Gated(name="salesforce"),
        "hubspot": MemoryDestination(name="hubspot", fault=reject),
        "airtable": MemoryDestination(name="airtable"),
    }
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations=dests) as h:
        for name in ("salesforce", "hubspot"):
            h.write_secret(f"org_1-{name}", SECRET)
            await h.put_config(make_config(name, version=3))
        await h.put_config(make_config("airtable", version=5, send_evaluations=False))
        await h.put_config(make_config("hubspot", "org_2"))  # no event: nothing seen yet
        for _ in range(3):
            await h.send_event(make_event())
        url = f"http://127.0.0.1:{h.service.http.port}/v1/destinations"
        async with aiohttp.ClientSession() as session:

            async def rows(**params: str) -> dict[tuple[str, str], dict[str, Any]]:
                async with session.get(url, params=params) as resp:
                    assert resp.status == 200
                    body = await resp.read()
                assert SECRET["access_token"].encode() not in body
                return {
                    (r["org_id"], r["destination"]): r for r in orjson.loads(body)["destinations"]
                }

            await h.wait_statuses(3)  # hubspot's three failures
            depth = 0
            for _ in range(100):
                depth = (await rows(org="org_1"))[("org_1", "salesforce")]["lane_depth"]
                if depth == 3:
                    break
                await asyncio.sleep(0.05)
            assert depth == 3  # held in the gated write
            release.set()
            await h.wait_statuses(6)
            seen = await rows()
            only_org_1 = await rows(org="org_1", destination="hubspot")
    assert set(seen) == {
        ("org_1", "salesforce"),
        ("org_1", "hubspot"),
        ("org_1", "airtable"),
        ("org_2", "hubspot"),
    }
    sf, hs = seen[("org_1", "salesforce")], seen[("org_1", "hubspot")]
    assert (sf["config_version"], sf["active"], sf["lane_depth"]) == (3, True, 0)
    assert sf["last_status"] == "delivered" and sf["last_delivery_at"].endswith("Z")
    assert sf["last_error_code"] is None and sf["circuit"] == "closed"
    assert (hs["last_status"], hs["last_error_code"], hs["last_delivery_at"]) == (
        "failed",
        "invalid_field",
        None,
    )
    airtable = seen[("org_1", "airtable")]
    assert (airtable["config_version"], airtable["active"]) == (5, False)
    assert seen[("org_2", "hubspot")]["last_status"] is None
    assert list(only_org_1) == [("org_1", "hubspot")]
