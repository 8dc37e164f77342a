"""The pipeline's parts without Kafka: outbox, circuit, tiers, lane, lanes,
deliverer and settler, against fakes and the in-memory destination."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from service.destinations.memory import MemoryDestination
from service.errors import QuotaExhausted, TransientError
from service.metrics import Metrics
from service.pipeline import circuit as circuit_module
from service.pipeline.circuit import Admit, Circuit, Circuits
from service.pipeline.deliver import Deliverer
from service.pipeline.lanes import Lanes
from service.pipeline.lanes.lane import Lane
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.settle import Settler
from service.pipeline.tiers import TierGate, TierRecord, tier_for, tier_topics
from service.pipeline.work import Delivery
from service.secrets import SecretStore
from service.settings import Settings
from tests.fakes import FakeProducer, ListQueue, delivery, job_of, watermarks

SETTINGS = Settings(bootstrap_servers="unused:9092", max_attempts=3)


async def test_outbox_sends_one_batch_per_partition_and_calls_back_after_acks() -> None:
    producer = FakeProducer(partitions=3)
    outbox = Outbox(producer, "leads")
    writer = asyncio.create_task(outbox.run())
    acked: list[str] = []
    await outbox.put(
        [Outgoing("status", b"k", b"1", 0), Outgoing("status", b"k", b"2", 1)],
        lambda: acked.append("a"),
    )
    await outbox.put([Outgoing("status", b"k", b"3", 0)], lambda: acked.append("b"))
    await outbox.barrier()
    writer.cancel()
    partitions = sorted((topic, p, len(items)) for topic, p, items in producer.sent)
    assert partitions == [("status", 0, 2), ("status", 1, 1)]  # one batch per partition
    assert acked == ["a", "b"]


async def test_outbox_retries_a_failing_producer_and_callers_only_wait() -> None:
    producer = FakeProducer()
    producer.fail = 3
    outbox = Outbox(producer, "leads", capacity=1)
    writer = asyncio.create_task(outbox.run())
    acked: list[int] = []
    await outbox.put([Outgoing("status", b"k", b"1", 0)], lambda: acked.append(1))
    second = asyncio.create_task(
        outbox.put([Outgoing("status", b"k", b"2", 0)], lambda: acked.append(2))
    )
    await asyncio.sleep(0.05)
    assert outbox.failing_since is not None and not second.done()  # full: the caller waits
    await asyncio.wait_for(outbox.barrier(), 5)
    writer.cancel()
    assert acked == [1, 2] and outbox.failing_since is None
    assert [items[0][1] for _, _, items in producer.sent] == [b"1", b"2"]


def test_circuit_opens_probes_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(circuit_module, "monotonic", lambda: clock[0])
    c = Circuit("hubspot (org-hubspot)")
    assert [c.failed("server_error") for _ in range(3)] == [False, False, True]
    assert c.admit() is Admit.DEFER and c.wait_s() == 5.0
    clock[0] += 5
    assert c.admit() is Admit.PROBE and c.admit() is Admit.DEFER  # one probe at a time
    c.failed("server_error")
    assert c.wait_s() == 10.0  # a failed probe doubles the interval
    for _ in range(10):
        clock[0] += c.wait_s()
        assert c.admit() is Admit.PROBE
        c.failed("timeout")
    assert c.wait_s() == circuit_module.MAX_OPEN_S
    clock[0] += c.wait_s()
    assert c.admit() is Admit.PROBE
    c.succeeded()
    assert not c.is_open and c.admit() is Admit.SEND


def test_circuit_open_gauge_counts_open_credentials() -> None:
    metrics = Metrics()
    circuits = Circuits(metrics, ["hubspot", "airtable"])
    for ref in ("a-hubspot", "b-hubspot"):
        for _ in range(3):
            circuits.get("hubspot", ref).failed("server_error")
    sample = metrics.registry.get_sample_value
    assert sample("trailspark_destinations_circuit_open", {"destination": "hubspot"}) == 2
    assert sample("trailspark_destinations_circuit_open", {"destination": "airtable"}) == 0


def test_tiers_hold_a_partition_at_its_first_record_not_due() -> None:
    gate = TierGate("retry")
    assert gate.topics == tier_topics("retry") and gate.topics[0] == "retry"
    assert [tier_for(w) for w in (0.2, 1, 4.9, 5, 30, 119, 7200)] == [0, 0, 0, 1, 2, 2, 5]
    tp = TopicPartition("retry.25s", 0)
    now = 1_000.0
    records = [
        SimpleNamespace(offset=o, timestamp=(now - age) * 1000)
        for o, age in ((7, 30), (8, 26), (9, 10))
    ]
    due, seek_to = gate.due(tp, records, now)  # type: ignore[arg-type]
    assert [r.offset for r in due] == [7, 8] and seek_to == 9
    assert gate.released(now + 14) == set() and gate.released(now + 15) == {tp}


def _lane(dest: MemoryDestination, deferred: list[tuple[Delivery, float]], **kw: Any) -> Lane:
    circuits = Circuits(Metrics(), [dest.name])

    async def deliver(lane: Lane, batch: list[Delivery], probe: bool) -> bool:
        await dest.write(
            SimpleNamespace(
                config=batch[0].config, items=[SimpleNamespace(event=d.event) for d in batch]
            )
        )  # type: ignore[arg-type]
        return True

    async def defer(pairs: list[tuple[Delivery, float]]) -> None:
        deferred.extend(pairs)

    circuit = lambda d: circuits.get(d.destination, "ref")  # noqa: E731
    return Lane(dest, circuit, deliver, defer, capacity=kw.get("capacity", 1000), linger_s=0.01)


def test_a_full_lane_defers_with_due_times_spread_at_its_rate() -> None:
    lane = _lane(MemoryDestination(max_batch_size=10), [])
    lane.rate = 50.0  # records/s, as measured for a paced Airtable base
    assert lane.window == 250
    taken = [lane.offer(delivery()) for _ in range(250)]
    assert taken == [None] * 250
    dues = [lane.offer(delivery()) for _ in range(100)]
    assert all(d is not None for d in dues)
    start = time() + 250 / 50  # after the window drains
    assert dues[0] == pytest.approx(start, abs=0.5)
    assert dues[-1] - dues[0] == pytest.approx(99 / 50, rel=0.01)  # one every 1/rate


async def test_an_open_circuit_defers_everything_then_admits_one_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane = _lane(MemoryDestination(max_batch_size=10), [])
    circuit = lane.circuit_of(delivery())
    for _ in range(3):
        circuit.failed("server_error")
    due = lane.offer(delivery())
    assert due is not None and due >= time() + 4.9
    monkeypatch.setattr(circuit, "probe_at", 0.0)
    assert lane.offer(delivery()) is None  # the empty lane carries the probe
    assert lane.offer(delivery()) is not None


async def test_lanes_restart_a_crashed_worker_and_lose_nothing() -> None:
    dest = MemoryDestination(max_batch_size=5)
    crashed = []

    async def deliver(lane: Lane, batch: list[Delivery], probe: bool) -> None:
        if not crashed:
            crashed.append(len(batch))
            raise RuntimeError("bug")
        for d in batch:
            d.job.delivery_settled()

    async def defer(pairs: list[tuple[Delivery, float]]) -> None:
        raise AssertionError("nothing should be deferred")

    lanes = Lanes(
        {"salesforce": dest},
        Circuits(Metrics(), ["salesforce"]),
        deliver,
        defer,
        Metrics(),
        capacity=100,
        linger_s=0.01,
    )
    done: list[int] = []
    jobs = [job_of(TopicPartition("t", 0), i, done) for i in range(12)]
    config = delivery().config  # one config version: batches fill up
    for job in jobs:
        assert lanes.offer(delivery(config, job=job)) is None
    for _ in range(200):
        if len(done) == 12:
            break
        await asyncio.sleep(0.01)
    await lanes.stop()
    assert crashed == [5] and lanes.restarts == 1
    assert sorted(done) == list(range(12))


def test_revoked_partitions_queued_work_is_dropped() -> None:
    lanes = Lanes(
        {"salesforce": MemoryDestination()},
        Circuits(Metrics(), ["salesforce"]),
        None,
        None,
        Metrics(),
        capacity=100,
        linger_s=1,
    )  # type: ignore[arg-type]
    keep, drop = TopicPartition("t", 0), TopicPartition("t", 1)
    for tp in (keep, drop, drop):
        lane = lanes._lane(lanes.destinations["salesforce"])  # no worker: offer straight to a lane
        lanes._lanes[("org_1", "salesforce")] = lanes._lanes.get(("org_1", "salesforce"), lane)
        lanes._lanes[("org_1", "salesforce")].offer(delivery(job=job_of(tp)))
    assert lanes.drop({drop}) == 2 and lanes.pending == 1


def _settler(sink: ListQueue, **settings: Any) -> Settler:
    s = Settings(bootstrap_servers="unused:9092", **{"max_attempts": 3, **settings})
    return Settler(s, Metrics(), sink, watermarks())


async def test_settler_retries_spend_attempts_then_fail() -> None:
    sink = ListQueue()
    settler = _settler(sink)
    error = TransientError("503", code="server_error", http_status=503)
    from service.destinations.base import Outcome

    await settler.settle([(delivery(attempt=1), Outcome.from_error(error))])
    (retry,) = sink.delayed()
    assert retry.attempt == 2 and retry.last_error and retry.last_error.code == "server_error"
    assert sink.records[0].topic == "trailspark.destinations.retry"  # the first retry: seconds
    assert retry.event == sink.records[0].value  # the original bytes, not a copy
    assert [s["status"] for s in sink.values("status")] == ["retrying"]
    await settler.settle([(delivery(attempt=3), Outcome.from_error(error))])
    final = sink.values("status")[-1]
    assert final["status"] == "failed" and final["attempts"] == 3


async def test_settler_defers_without_spending_and_fails_past_the_deadline() -> None:
    sink = ListQueue()
    settler = _settler(sink, retry_deadline_s=3600)
    due = time() + 30
    await settler.defer([(delivery(attempt=2), due)])
    (record,) = sink.records
    assert record.topic == "trailspark.destinations.retry.25s"
    assert sink.delayed()[0].attempt == 2
    old = datetime.now(UTC) - timedelta(hours=2)
    await settler.defer([(delivery(first_attempt_at=old), due)])
    assert sink.values("status")[-1]["status"] == "failed"
    assert sink.values("status")[-1]["error"]["code"] == "deadline_exceeded"


async def test_deliverer_counts_batch_failures_on_the_circuit_and_defers_a_failed_probe(
    tmp_path: Path,
) -> None:
    (tmp_path / "org_1-salesforce.json").write_text('{"access_token": "t"}')
    sink = ListQueue()
    settler = _settler(sink)
    dest = MemoryDestination(max_batch_size=10)

    async def down(batch: Any) -> list[Any]:
        raise TransientError("503 Service Unavailable", code="server_error", http_status=503)

    dest.write = down  # type: ignore[method-assign]
    deliverer = Deliverer(Metrics(), SecretStore(tmp_path), watermarks(), settler)
    lane = _lane(dest, [])
    for _ in range(3):
        await deliverer(lane, [delivery()], False)
    circuit = lane.circuit_of(delivery())
    assert circuit.is_open and len(sink.values("status")) == 3  # three `retrying`, attempts spent
    before = len(sink.records)
    await deliverer(lane, [delivery(attempt=2)], True)
    deferred, mark, progress = sink.records[before:]
    assert mark.topic.endswith("watermarks") and b'"written":false' in (mark.value or b"")
    assert TierRecord.read(deferred.value, deferred.headers).attempt == 2
    assert circuit.wait_s() > 5
    assert progress.topic.endswith("status")


async def test_deliverer_puts_the_lane_on_hold_for_a_spent_quota(tmp_path: Path) -> None:
    (tmp_path / "org_1-salesforce.json").write_text('{"access_token": "t"}')
    sink = ListQueue()
    dest = MemoryDestination()

    async def spent(batch: Any) -> list[Any]:
        raise QuotaExhausted("daily limit", retry_after=3600)

    dest.write = spent  # type: ignore[method-assign]
    lane = _lane(dest, [])
    await Deliverer(Metrics(), SecretStore(tmp_path), watermarks(), _settler(sink))(
        lane, [delivery()], False
    )
    assert lane.hold_until > time() + 3500
    assert sink.records[0].topic.endswith((".10m", ".1h"))
    (progress,) = sink.values("status")  # the answer that put the lane on hold
    assert progress["status"] == "retrying" and progress["error"]["code"] == "quota_exhausted"
    assert lane.offer(delivery()) is not None  # on hold: new work is deferred too


async def test_a_lookup_that_fails_on_every_record_counts_on_the_circuit(tmp_path: Path) -> None:
    """HubSpot and Salesforce report a failed lookup (503) on each record, not for
    the batch: that is the destination down too, and it opens the circuit."""
    from service.destinations.base import Outcome

    (tmp_path / "org_1-salesforce.json").write_text('{"access_token": "t"}')
    dest = MemoryDestination(max_batch_size=10)
    error = TransientError("503", code="server_error", http_status=503)

    async def per_record(batch: Any) -> list[Any]:
        return [Outcome.from_error(error) for _ in batch.items]

    dest.write = per_record  # type: ignore[method-assign]
    deliverer = Deliverer(Metrics(), SecretStore(tmp_path), watermarks(), _settler(ListQueue()))
    lane = _lane(dest, [])
    for _ in range(3):
        await deliverer(lane, [delivery(), delivery()], False)
    assert lane.circuit_of(delivery()).is_open


async def test_a_revoked_write_that_outlasts_the_drain_is_abandoned(tmp_path: Path) -> None:
    """One owner at a time: Lanes.abandon cancels the CRM call carrying a revoked
    partition's deliveries; they are not settled (the next owner redelivers them),
    and the batch's deliveries of kept partitions are deferred, attempts untouched."""
    (tmp_path / "org_1-salesforce.json").write_text('{"access_token": "t"}')
    sink = ListQueue()
    dest = MemoryDestination(max_batch_size=10)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hangs(batch: Any) -> list[Any]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    dest.write = hangs  # type: ignore[method-assign]
    deliverer = Deliverer(Metrics(), SecretStore(tmp_path), watermarks(0, 1), _settler(sink))
    lanes = Lanes(
        {"salesforce": dest},
        Circuits(Metrics(), ["salesforce"]),
        deliverer,
        deliverer.settler.defer,
        Metrics(),
        capacity=100,
        linger_s=0.01,
    )
    kept, revoked = TopicPartition("t", 0), TopicPartition("t", 1)
    counted: list[int] = []
    config = delivery().config
    for i, tp in enumerate((kept, revoked, revoked)):
        lanes.offer(delivery(config, job=job_of(tp, i, counted), lead_id=f"lead_{i}"))
    await asyncio.wait_for(started.wait(), 5)
    assert lanes.in_flight_from({revoked}) == 2
    assert lanes.abandon({revoked}) == 2
    await asyncio.wait_for(cancelled.wait(), 5)
    for _ in range(100):
        if not lanes.in_flight_from({revoked, kept}):
            break
        await asyncio.sleep(0.01)
    await lanes.stop()
    assert not lanes.in_flight_from({revoked, kept})
    assert counted == [0]  # only the kept partition's delivery settled
    (deferred,) = [r for r in sink.records if ".retry" in r.topic]  # and its attempt mark
    assert deferred.topic.startswith("trailspark.destinations.retry")
    assert TierRecord.read(deferred.value, deferred.headers).attempt == 1
    assert not sink.values("status")


def test_closed_failure_free_circuits_are_swept_so_memory_does_not_grow() -> None:
    from service.pipeline import circuit as circuit_module

    circuits = Circuits(Metrics(), ["hubspot"])
    for _ in range(3):
        circuits.get("hubspot", "org_x-hubspot").failed("server_error")  # open: kept
    circuits.get("hubspot", "org_y-hubspot").failed("timeout")  # one failure: kept
    for i in range(circuit_module.SWEEP_AT * 3):
        circuits.get("hubspot", f"org_{i}-hubspot")  # credentials come and go
    assert len(circuits._circuits) <= 2 * circuit_module.SWEEP_AT
    assert circuits.get("hubspot", "org_x-hubspot").is_open
    assert circuits.get("hubspot", "org_y-hubspot").failures == 1
