"""Handing tenants over, without a broker: the `released` time a new owner finds in
its restored store, and an upgraded deployment's watermarks imported by org."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka.structs import ConsumerRecord

from service.models import epoch_us
from service.pipeline.handoff import released_at, released_records
from service.pipeline.legacy import IMPORTED_KEY, LegacyMarks
from service.pipeline.outbox import Outbox
from service.pipeline.restore import mark_bytes
from service.pipeline.state import StateStores
from service.settings import Settings
from service.tenancy import org_partition
from tests.fakes import FakeProducer

SETTINGS = Settings(bootstrap_servers="unused:9092")


def changelog_value(at: str, evaluation: str) -> bytes:
    return orjson.dumps({"evaluated_at": at, "evaluation_id": evaluation})


def test_a_new_owner_reads_when_the_old_one_let_go(tmp_path: Path) -> None:
    before = time.time()
    out = released_records("marks", {4, 1})
    assert [(r.topic, r.partition) for r in out] == [("marks", 1), ("marks", 4)]
    stores = StateStores(tmp_path, "g", "marks")
    store = stores.open(4)
    record = out[1]
    assert record.key is not None and record.value is not None
    store.apply([(record.key, mark_bytes(record.value))], 1)  # what a restore does
    at = released_at(stores, 4)
    assert at is not None and before - 0.01 <= at <= time.time()
    assert released_at(stores, 1) is None  # not restored here: no hold
    stores.open(1)
    assert released_at(stores, 1) is None  # never handed back: no hold


async def test_old_marks_are_imported_into_their_orgs_partitions_where_newer(
    tmp_path: Path,
) -> None:
    partitions = 6
    moved = "org_m"
    mine = org_partition(moved, partitions)
    other = next(f"org_{i}" for i in range(99) if org_partition(f"org_{i}", partitions) != mine)
    stores = StateStores(tmp_path, "g", "marks.by-org")
    stores.open(mine)
    stores.put(mine, f"{moved}:salesforce:lead_new", (2_000_000_000_000_000, "eval_newer", True))
    producer = FakeProducer(partitions=partitions)
    outbox = Outbox(producer, "work")
    writer = asyncio.create_task(outbox.run())
    legacy = LegacyMarks(SETTINGS, "marks", "marks.by-org", stores, outbox)
    legacy.partitions = 3  # the old changelog exists
    old = [  # partitioned by org:lead, as earlier versions wrote them
        (f"{moved}:salesforce:lead_1", changelog_value("2026-11-01T00:00:00Z", "e1")),
        (f"{moved}:salesforce:lead_1", changelog_value("2026-11-02T00:00:00Z", "e2")),
        (f"{moved}:salesforce:lead_new", changelog_value("2026-01-01T00:00:00Z", "e_old")),
        (f"{other}:hubspot:lead_9", changelog_value("2026-11-03T00:00:00Z", "e9")),
    ]
    batch = [
        ConsumerRecord("marks", 2, n, 0, 0, key.encode(), value, None, 0, 0, ())
        for n, (key, value) in enumerate(old)
    ]
    try:
        assert legacy.pending({mine}) == {mine}
        copied = await legacy._apply(batch, {mine}, partitions)
        await asyncio.wait_for(outbox.barrier(), 5)
    finally:
        writer.cancel()
    assert copied == 2  # lead_1 twice (each newer than what was held); lead_new kept
    nov_2 = epoch_us(datetime(2026, 11, 2, tzinfo=UTC))
    assert stores.get(mine, f"{moved}:salesforce:lead_1") == (nov_2, "e2", True)
    assert stores.get(mine, f"{moved}:salesforce:lead_new") == (
        2_000_000_000_000_000,
        "eval_newer",
        True,
    )
    assert stores.get(mine, f"{other}:hubspot:lead_9") is None  # another partition's org
    sent = [(topic, p, key) for topic, p, items in producer.sent for key, _, _ in items]
    assert {(t, p) for t, p, _ in sent} == {("marks.by-org", mine)}
    store = stores.parts[mine]
    store.put(IMPORTED_KEY, (0, "imported", True))
    assert legacy.pending({mine}) == set()  # imported once: later restores skip it
