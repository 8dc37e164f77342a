"""The router without a broker: fan-out to the org's active destinations, the DLQ,
deferrals, the routes that settle at once, and delay-tier records coming back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import TopicPartition

from devkit.factories import make_config, make_event
from service.config.store import ConfigStore
from service.destinations.base import Outcome
from service.metrics import Metrics
from service.models import DeliveryState
from service.pipeline.offsets import OffsetTracker
from service.pipeline.router import Router
from service.pipeline.tiers import TierGate, TierRecord
from service.pipeline.work import Delivery
from service.settings import Settings
from tests.fakes import ListQueue

TOPIC = "evaluations"
TP = TopicPartition(TOPIC, 0)


class FakeLanes:
    """Takes every offered delivery, or names a time to come back (`due`)."""

    def __init__(self, *destinations: str, due: float | None = None) -> None:
        self.destinations = set(destinations)
        self.due = due
        self.offered: list[Delivery] = []

    def offer(self, delivery: Delivery) -> float | None:
        self.offered.append(delivery)
        return self.due


class FakeSettler:
    def __init__(self) -> None:
        self.settled: list[tuple[Delivery, Outcome]] = []
        self.deferred: list[tuple[Delivery, float]] = []

    async def settle(self, pairs: list[tuple[Delivery, Outcome]]) -> None:
        self.settled += pairs
        for delivery, _ in pairs:
            delivery.job.delivery_settled()

    async def defer(self, pairs: list[tuple[Delivery, float]]) -> None:
        self.deferred += pairs


def router(lanes: FakeLanes, *configs: dict[str, Any]) -> tuple[Router, Any]:
    settings = Settings(bootstrap_servers="unused:9092")
    metrics = Metrics()
    store = ConfigStore(metrics)
    for config in configs:
        store.apply_object(config)
    parts = SimpleNamespace(
        settings=settings,
        metrics=metrics,
        lanes=lanes,
        settler=FakeSettler(),
        sink=ListQueue(),
        offsets=OffsetTracker(),
        gate=TierGate(settings.topic_retry),
    )
    r = Router(
        settings,
        metrics,
        store,
        lanes,  # type: ignore[arg-type]
        parts.settler,
        parts.sink,  # type: ignore[arg-type]
        parts.offsets,
        parts.gate,
    )
    return r, parts


def record(value: bytes, offset: int = 0, topic: str = TOPIC, headers: Any = ()) -> Any:
    return SimpleNamespace(
        topic=topic, partition=0, offset=offset, key=b"org_1", value=value, headers=headers
    )


def event_bytes(**fields: Any) -> bytes:
    return orjson.dumps(make_event(**fields))


async def test_an_evaluation_fans_out_to_every_active_destination_of_its_org() -> None:
    lanes = FakeLanes("salesforce", "hubspot")
    r, parts = router(lanes, make_config("salesforce"), make_config("hubspot"))
    await r.on_records(TP, [record(event_bytes())])
    assert sorted(d.destination for d in lanes.offered) == ["hubspot", "salesforce"]
    (job,) = {id(d.job): d.job for d in lanes.offered}.values()
    assert job.remaining == 2 and parts.offsets.pending() == 1  # open until both settle
    assert parts.metrics.events_consumed._value.get() == 1


async def test_an_org_without_destinations_commits_at_once_and_says_nothing() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes, make_config("salesforce", "org_other"))
    await r.on_records(TP, [record(event_bytes(), offset=7)])
    assert lanes.offered == [] and parts.sink.records == []
    assert parts.offsets.pending() == 0 and parts.offsets.commit_points() == {TP: 8}


async def test_an_unreadable_event_goes_to_the_dlq_once_and_its_offset_commits() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes, make_config("salesforce"))
    await r.on_records(TP, [record(b"{not json", offset=3), record(event_bytes(), offset=4)])
    (dead,) = parts.sink.records
    assert dead.topic == parts.settings.topic_dlq and dead.value == b"{not json"
    assert len(lanes.offered) == 1  # the next record is routed as usual
    assert parts.offsets.commit_points() == {TP: 4}  # 3 is done, 4 waits for its delivery


async def test_a_full_lane_defers_the_delivery_to_the_time_it_names() -> None:
    lanes = FakeLanes("salesforce", due=1e10)
    r, parts = router(lanes, make_config("salesforce"))
    await r.on_records(TP, [record(event_bytes())])
    ((delivery, due),) = parts.settler.deferred
    assert delivery.destination == "salesforce" and due == 1e10


async def test_a_destination_not_enabled_fails_and_a_disconnected_one_is_skipped() -> None:
    disconnected = make_config("hubspot")
    disconnected["integration"]["status"] = "disconnected"
    lanes = FakeLanes("hubspot")
    r, parts = router(lanes, make_config("salesforce"), disconnected)
    await r.on_records(TP, [record(event_bytes())])
    outcomes = {d.destination: o for d, o in parts.settler.settled}
    assert lanes.offered == []
    assert outcomes["salesforce"].state == DeliveryState.FAILED
    assert outcomes["salesforce"].error is not None
    assert outcomes["salesforce"].error.code == "destination_unavailable"
    assert outcomes["hubspot"].state == DeliveryState.SKIPPED
    assert outcomes["hubspot"].reason == "integration_not_connected"
    assert parts.offsets.pending() == 0


def tier_record(not_before: datetime, destination: str = "salesforce", topic: str = "") -> Any:
    delayed = TierRecord(destination, 2, not_before, datetime.now(UTC), None, event_bytes())
    return record(delayed.event, offset=0, topic=topic, headers=delayed.headers())


async def test_a_due_tier_record_is_delivered_again_with_its_attempt() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes, make_config("salesforce"))
    tier = parts.gate.topics[0]
    await r.on_records(TopicPartition(tier, 0), [tier_record(datetime.now(UTC), topic=tier)])
    (delivery,) = lanes.offered
    assert delivery.attempt == 2 and delivery.destination == "salesforce"


async def test_a_tier_record_not_due_moves_on_to_the_tier_that_fits_its_wait() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes, make_config("salesforce"))
    first = parts.gate.topics[0]
    later = datetime.now(UTC) + timedelta(seconds=100)
    await r.on_records(TopicPartition(first, 0), [tier_record(later, topic=first)])
    (forward,) = parts.sink.records
    # The longest tier that does not overshoot 100 s: 25 s (2 min would be late).
    assert forward.topic == parts.gate.topics[2] and forward.topic.endswith(".25s")
    assert forward.source_partition == 0
    assert TierRecord.read(forward.value, forward.headers).not_before == later.replace(
        microsecond=later.microsecond // 1000 * 1000
    )  # the same record, headers and all (times travel in milliseconds)
    assert lanes.offered == [] and parts.offsets.pending() == 0


async def test_a_tier_record_of_a_deleted_destination_is_skipped() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes)
    tier = parts.gate.topics[0]
    await r.on_records(TopicPartition(tier, 0), [tier_record(datetime.now(UTC), topic=tier)])
    ((delivery, outcome),) = parts.settler.settled
    assert outcome.state == DeliveryState.SKIPPED and outcome.reason == "destination_inactive"
    assert delivery.config.integration.status == "deleted"


async def test_a_tier_record_this_service_did_not_write_goes_to_the_dlq() -> None:
    lanes = FakeLanes("salesforce")
    r, parts = router(lanes, make_config("salesforce"))
    tier = parts.gate.topics[0]
    await r.on_records(TopicPartition(tier, 0), [record(b"garbage", topic=tier)])
    (dead,) = parts.sink.records
    assert dead.topic == parts.settings.topic_dlq and lanes.offered == []
