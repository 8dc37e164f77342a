from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from devkit.factories import make_config, make_event
from service.models import EVENT, DestinationConfig, epoch_us
from service.pipeline.offsets import OffsetTracker
from service.pipeline.restore import mark_bytes
from service.pipeline.state import StateStores
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery
from tests.fakes import job_of, watermarks

TP = TopicPartition("t", 0)


def test_commit_point_is_the_lowest_unfinished_offset() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        part = tracker.add(TP, offset, size=100)
    assert tracker.commit_points() == {TP: 10} and tracker.open_bytes == 500
    part.finish(12)
    part.finish(11)
    assert tracker.commit_points() == {TP: 10}  # 10 still open: nothing past it
    part.finish(10)
    part.finish(10)  # twice: no effect
    assert tracker.commit_points() == {TP: 13} and tracker.pending() == 2
    tracker.mark_committed({TP: 13})
    assert tracker.commit_points() == {}
    part.finish(14)
    part.finish(13)
    assert tracker.commit_points() == {TP: 15} and tracker.pending() == 0
    assert tracker.open_bytes == 0


def test_revoked_partition_is_forgotten() -> None:
    tracker = OffsetTracker()
    old = tracker.add(TP, 0, size=10)
    tracker.forget({TP})
    assert tracker.pending() == 0 and tracker.open_bytes == 0  # no budget leaks
    tracker.add(TP, 0)  # assigned again: the record is redelivered
    old.finish(0)  # late completion of the first assignment's job: ignored
    assert tracker.commit_points() == {TP: 0} and tracker.pending() == 1


def delivery(event: dict[str, Any]) -> Delivery:
    job = job_of(TP)
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
    stores.put(0, key, (epoch_us(datetime.fromisoformat(at.format(12))), "eval_3", True))
    stores.close({0})
    again = StateStores(tmp_path, "group", "marks").open(0)
    assert again.survived
    again.apply([(key.encode(), mark_bytes(_mark(at.format(11), "eval_2")))], 6)
    assert again.get(key) == (epoch_us(datetime.fromisoformat(at.format(12))), "eval_3", True)
    again.apply([(key.encode(), mark_bytes(_mark(at.format(13), "eval_4")))], 7)
    assert again.get(key) == (epoch_us(datetime.fromisoformat(at.format(13))), "eval_4", True)
    fresh = StateStores(tmp_path / "fresh", "group", "marks").open(0)
    assert not fresh.survived  # a new store takes the changelog as it is, without reads


def _mark(evaluated_at: str, evaluation_id: str) -> bytes:
    return f'{{"evaluated_at": "{evaluated_at}", "evaluation_id": "{evaluation_id}"}}'.encode()


def test_epoch_us_is_exact_and_offset_aware() -> None:
    base = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert epoch_us(base) - epoch_us(base - timedelta(microseconds=1)) == 1
    plus2 = datetime.fromisoformat("2026-11-22T12:00:00.123456+02:00")
    assert epoch_us(plus2) == epoch_us(base)


def test_an_attempted_write_makes_older_evaluations_stale_and_its_retry_fresh() -> None:
    """Finding 4 of issue 19: a write whose answer said no (or was lost) may have been
    applied in part, so an older evaluation must not overwrite it afterwards."""
    marks = watermarks()
    new = delivery(make_event(lead_id="a", evaluated_at="2026-11-22T11:00:00Z"))
    old = delivery(make_event(lead_id="a", evaluated_at="2026-11-22T10:00:00Z"))
    assert marks.attempt(new)  # its write went out and failed: the mark is attempted
    assert not marks.attempt(new)  # once
    assert marks.split([old]) == ([], [old], [])  # older: stale, never written over it
    same = delivery({**make_event(lead_id="a", evaluated_at="2026-11-22T11:00:00Z")})
    assert marks.split([same]) == ([same], [], [])  # its own retry goes through
    assert marks.advance(same)  # delivered: written from now on
    assert marks.split([same]) == ([], [], [same])  # and a redelivery is a duplicate


def test_a_changelog_attempt_never_downgrades_a_written_mark(tmp_path: Path) -> None:
    key = b"org_1:salesforce:a"
    store = StateStores(tmp_path, "group", "marks").open(0)
    written = mark_bytes(_mark("2026-11-22T10:00:00Z", "eval_1"))
    attempted = mark_bytes(
        b'{"evaluated_at": "2026-11-22T10:00:00Z", "evaluation_id": "eval_1", "written": false}'
    )
    store.apply([(key, attempted), (key, written)], next_offset=2)
    assert store.get(key.decode())[2] is True  # type: ignore[index]
    store.survived = True
    store.apply([(key, attempted)], next_offset=3)  # replayed over a surviving store
    assert store.get(key.decode())[2] is True  # type: ignore[index]
