from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from service.models import EVENT, DestinationConfig, epoch_us
from service.pipeline.offsets import OffsetTracker
from service.pipeline.restore import mark_bytes
from service.pipeline.state import StateStores
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery, Job
from tests.factories import make_config, make_event
from tests.fakes import watermarks

TP = TopicPartition("t", 0)


def test_commit_point_is_the_lowest_unfinished_offset() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.add(TP, offset)
    assert tracker.commit_points() == {TP: 10}
    tracker.finish(TP, 12)
    tracker.finish(TP, 11)
    assert tracker.commit_points() == {TP: 10}  # 10 still open: nothing past it
    tracker.finish(TP, 10)
    assert tracker.commit_points() == {TP: 13}
    tracker.mark_committed({TP: 13})
    assert tracker.commit_points() == {}
    tracker.finish(TP, 14)
    tracker.finish(TP, 13)
    assert tracker.commit_points() == {TP: 15} and tracker.pending() == 0


def test_revoked_partition_is_forgotten() -> None:
    tracker = OffsetTracker()
    tracker.add(TP, 0)
    tracker.forget({TP})
    tracker.finish(TP, 0)  # late completion after revoke: ignored
    assert tracker.commit_points() == {}


def delivery(event: dict[str, Any]) -> Delivery:
    job = Job(TP, 0, 1, lambda j: None)
    config = DestinationConfig.model_validate(make_config())
    return Delivery(EVENT.validate_python(event), b"", config, job)


def test_older_than_delivered_and_older_in_batch_are_stale_same_is_duplicate() -> None:
    marks = watermarks()
    t0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
    stamp = lambda dt: dt.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    old = delivery(make_event(lead_id="a", evaluated_at=stamp(t0)))
    new_event = make_event(lead_id="a", evaluated_at=stamp(t0 + timedelta(minutes=1)))
    new = delivery(new_event)
    other = delivery(make_event(lead_id="b", evaluated_at=stamp(t0)))
    assert marks.split([new, old, other]) == ([new, other], [old], [])
    assert marks.advance(new)
    assert not marks.advance(old)
    assert marks.split([old]) == ([], [old], [])
    # The same evaluation again is a redelivery: skipped as a duplicate, not written.
    again = delivery({**new_event, "event_id": "redelivered"})
    assert marks.split([again]) == ([], [], [again])
    # The same instant but another evaluation is written.
    other_eval = make_event(lead_id="a", evaluated_at=stamp(t0 + timedelta(minutes=1)))
    assert marks.split([d := delivery(other_eval)]) == ([d], [], [])


def test_the_store_survives_a_restart_and_restores_from_changelog_values(tmp_path: Path) -> None:
    stores = StateStores(tmp_path, "group", "marks")
    store = stores.open(0)
    value = b'{"evaluated_at": "2026-11-22T12:00:00+02:00", "evaluation_id": "eval_9"}'
    store.apply([(b"org_1:salesforce:a", mark_bytes(value))], next_offset=41)
    stores.close({0})
    again = StateStores(tmp_path, "group", "marks")
    assert again.open(0).offset == 41  # restore goes on from here
    marks = Watermarks(again)
    earlier = delivery(make_event(lead_id="a", evaluated_at="2026-11-22T09:30:00Z"))
    same_event = make_event(lead_id="a", evaluated_at="2026-11-22T10:00:00Z")
    same_event["evaluation"]["evaluation_id"] = "eval_9"
    same = delivery(same_event)
    assert marks.split([earlier]) == ([], [earlier], [])
    assert marks.split([same]) == ([], [], [same])


def test_a_surviving_store_keeps_marks_newer_than_its_changelog(tmp_path: Path) -> None:
    """kill -9 after the CRM answered but before the watermark record reached Kafka:
    the local mark is newer than anything the changelog replays, and must stay, or
    the redelivered evaluation is written again."""
    key = "org_1:salesforce:a"
    at = "2026-11-22T{}:00:00Z"
    stores = StateStores(tmp_path, "group", "marks")
    stores.open(0).apply([(key.encode(), mark_bytes(_mark(at.format(10), "eval_1")))], 5)
    stores.put(0, key, (epoch_us(datetime.fromisoformat(at.format(12))), "eval_3"))
    stores.close({0})
    again = StateStores(tmp_path, "group", "marks").open(0)
    assert again.survived
    again.apply([(key.encode(), mark_bytes(_mark(at.format(11), "eval_2")))], 6)
    assert again.get(key) == (epoch_us(datetime.fromisoformat(at.format(12))), "eval_3")
    again.apply([(key.encode(), mark_bytes(_mark(at.format(13), "eval_4")))], 7)
    assert again.get(key) == (epoch_us(datetime.fromisoformat(at.format(13))), "eval_4")
    fresh = StateStores(tmp_path / "fresh", "group", "marks").open(0)
    assert not fresh.survived  # a new store takes the changelog as it is, without reads


def _mark(evaluated_at: str, evaluation_id: str) -> bytes:
    return f'{{"evaluated_at": "{evaluated_at}", "evaluation_id": "{evaluation_id}"}}'.encode()


def test_epoch_us_is_exact_and_offset_aware() -> None:
    base = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert epoch_us(base) - epoch_us(base - timedelta(microseconds=1)) == 1
    plus2 = datetime.fromisoformat("2026-11-22T12:00:00.123456+02:00")
    assert epoch_us(plus2) == epoch_us(base)
