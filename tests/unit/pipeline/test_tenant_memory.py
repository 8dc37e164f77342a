"""Memory per idle tenant (issue 23): what an (org, destination) costs once its work
is done, measured with tracemalloc on the structures the process builds for it:
its config (from the config topic's JSON), its lane, circuit and rate window
after one delivery. 10,000 orgs x 3 destinations must fit one pod: <= 5 KB each.
(`python -m bench.micro.tenant_memory` measures the real process, line by line.)"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import orjson
import pytest

from devkit.factories import make_config
from service.config.store import ConfigStore
from service.destinations.memory import MemoryDestination
from service.metrics import Metrics
from service.models import DestinationConfig
from service.pipeline import lanes as lanes_module
from service.pipeline.circuit import Circuits
from service.pipeline.lanes import Lanes
from service.pipeline.lanes.lane import IDLE_LANE_S, Lane
from service.pipeline.work import Delivery
from service.ratelimit import WindowPool
from tests.fakes import delivery, job_of

ORGS = 2_000
DESTINATIONS = ("salesforce", "hubspot", "airtable")
MAX_BYTES_PER_TENANT = 5 * 1024


def config_records() -> list[bytes]:
    return [
        orjson.dumps(make_config(name, f"org{i:05d}", propensity=None))
        for i in range(ORGS)
        for name in DESTINATIONS
    ]


class Tenants:
    """The per-(org, destination) parts of stage 2, fed one event per org."""

    def __init__(self) -> None:
        metrics = Metrics()
        self.store = ConfigStore(metrics)
        self.windows = WindowPool(5, 1.0)  # one per Airtable base
        self.lanes = Lanes(
            {name: MemoryDestination(name=name) for name in DESTINATIONS},
            Circuits(metrics, list(DESTINATIONS)),
            self._deliver,
            self._defer,
            metrics,
            capacity=1000,
            linger_s=0.001,
        )
        self.delivered = 0

    async def _deliver(self, lane: Lane, batch: list[Delivery], probe: bool) -> bool:
        async with self.windows.get(batch[0].event.org_id).slot():
            self.delivered += len(batch)
        lane.circuit_of(batch[0]).succeeded()
        return True

    async def _defer(self, batch: list[tuple[Delivery, float]]) -> None:
        raise AssertionError("nothing is deferred here")

    async def feed(self, event: dict[str, Any]) -> None:
        """One event for every config in force, as the router hands them to lanes."""
        configs = [c for i in range(ORGS) for c in self.store.active(f"org{i:05d}")]
        for config in configs:
            one = delivery(config, job=job_of(), **{**event, "org_id": config.org_id})
            assert self.lanes.offer(one) is None
        for _ in range(3000):  # every lane's worker ends once its work is done
            if self.delivered >= len(configs) and not self.lanes._tasks:
                break
            await asyncio.sleep(0.01)


def held_bytes() -> int:
    gc.collect()
    return sum(stat.size for stat in tracemalloc.take_snapshot().statistics("filename"))


async def test_an_idle_tenant_costs_at_most_5_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    records = config_records()
    tenants = Tenants()
    tracemalloc.start()
    try:
        before = held_bytes()
        for record in records:
            tenants.store.apply_record(None, record)
        await tenants.feed({"lead_id": "lead_1"})
        idle = held_bytes() - before
    finally:
        tracemalloc.stop()
    per_tenant = idle / len(records)
    assert len(tenants.store) == len(records) and tenants.delivered == len(records)
    assert per_tenant <= MAX_BYTES_PER_TENANT, f"{per_tenant:,.0f} bytes per idle tenant"
    # After the idle period the next lane to start or end forgets the idle ones.
    later = lanes_module.monotonic() + IDLE_LANE_S + 1
    monkeypatch.setattr(lanes_module, "monotonic", lambda: later)
    newcomer = tenants.store.active("org00000")[0].model_copy(update={"org_id": "new"})
    assert tenants.lanes.offer(delivery(newcomer, job=job_of(), org_id="new")) is None
    assert list(tenants.lanes._lanes) == [("new", "salesforce")] and not tenants.lanes._idle
    await tenants.lanes.stop()


def test_a_compact_config_equals_the_validated_one() -> None:
    store = ConfigStore(Metrics())
    for record in config_records()[:6]:
        store.apply_record(None, record)
    for config in store.configs():
        raw = make_config(config.destination, config.org_id, propensity=None)
        validated = DestinationConfig.model_validate(raw)
        assert config == validated and config.model_dump() == validated.model_dump()
        assert config.model_dump(exclude_unset=True) == raw
        copied = config.model_copy(update={"version": 2})  # the fields-set is copied first
        assert copied.version == 2 and config.version == 1
    salesforce = [c for c in store.configs() if c.destination == "salesforce"]
    assert salesforce[0].targets is salesforce[1].targets  # one copy of equal targets


def test_shared_config_parts_go_with_the_last_config_that_used_them() -> None:
    store = ConfigStore(Metrics())
    for i in range(3_000):  # each org its own targets: nothing shared but the small parts
        raw = make_config("airtable", f"org{i:05d}", propensity=None)
        raw["targets"] = [{**raw["targets"][0], "object": f"Table {i}"}]
        store.apply_record(None, orjson.dumps(raw))
        store.apply_record(f"org{i:05d}:airtable".encode(), None)  # tombstone
    assert len(store) == 0 and len(store._compactor) < 1100  # swept, not 3,000 targets


async def test_a_lane_that_idled_out_starts_again_from_what_it_learned() -> None:
    tenants = Tenants()
    tenants.store.apply_record(None, config_records()[0])
    config = tenants.store.active("org00000")[0]
    tenants.lanes.offer(delivery(config, job=job_of(), org_id="org00000"))
    while tenants.lanes._tasks:
        await asyncio.sleep(0.01)
    key = ("org00000", "salesforce")
    assert key not in tenants.lanes._lanes and key in tenants.lanes._idle  # the lane went
    rate = tenants.lanes._idle[key][1][0]
    assert rate != MemoryDestination().max_batch_size * 10.0  # measured on the write
    tenants.lanes.offer(delivery(config, job=job_of(), org_id="org00000"))
    assert tenants.lanes._lanes[key].rate == rate and key not in tenants.lanes._idle
    await tenants.lanes.stop()


async def test_a_lane_that_only_deferred_does_not_stay() -> None:
    tenants = Tenants()
    tenants.store.apply_record(None, config_records()[0])
    config = tenants.store.active("org00000")[0]
    for _ in range(3):
        tenants.lanes.circuits.get("salesforce", config.integration.credentials_ref).failed("x")
    due = tenants.lanes.offer(delivery(config, job=job_of(), org_id="org00000"))
    assert due is not None  # the circuit is open: deferred, the lane took nothing
    while tenants.lanes._tasks:
        await asyncio.sleep(0.01)
    assert not tenants.lanes._lanes and ("org00000", "salesforce") in tenants.lanes._idle
