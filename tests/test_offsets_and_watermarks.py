from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from service.models import EVENT, DestinationConfig, epoch_us
from service.pipeline.offsets import OffsetTracker
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery, Job
from tests.factories import make_config, make_event

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


def test_older_than_delivered_and_older_in_batch_are_stale() -> None:
    marks = Watermarks()
    t0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
    stamp = lambda dt: dt.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    old = delivery(make_event(lead_id="a", evaluated_at=stamp(t0)))
    new = delivery(make_event(lead_id="a", evaluated_at=stamp(t0 + timedelta(minutes=1))))
    other = delivery(make_event(lead_id="b", evaluated_at=stamp(t0)))
    fresh, stale = marks.split([new, old, other])
    assert fresh == [new, other] and stale == [old]
    assert marks.advance(new.lead_key, new.evaluated_at_us)
    assert not marks.advance(old.lead_key, old.evaluated_at_us)
    fresh, stale = marks.split([old])
    assert stale == [old]
    # Same evaluated_at again is a redelivery: written again, not stale.
    assert marks.split([new]) == ([new], [])


def test_watermarks_load_from_topic_records() -> None:
    marks = Watermarks()
    marks.apply_record(b"org_1:salesforce:a", b'{"evaluated_at": "2026-11-22T10:00:00Z"}')
    marks.apply_record(b"org_1:salesforce:a", b'{"evaluated_at": "2026-11-22T09:00:00Z"}')
    assert len(marks) == 1
    d = delivery(make_event(lead_id="a", evaluated_at="2026-11-22T09:30:00Z"))
    assert marks.split([d]) == ([], [d])
    # Offsets are instants: 12:30+02:00 is 10:30Z, newer than the held 10:00Z.
    later = delivery(make_event(lead_id="a", evaluated_at="2026-11-22T12:30:00+02:00"))
    assert marks.split([later]) == ([later], [])


def test_epoch_us_is_exact_and_offset_aware() -> None:
    base = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert epoch_us(base) - epoch_us(base - timedelta(microseconds=1)) == 1
    plus2 = datetime.fromisoformat("2026-11-22T12:00:00.123456+02:00")
    assert epoch_us(plus2) == epoch_us(base)
