"""Every kind of invalid event gets its DLQ code and stage (contract §3, §6)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from devkit.factories import make_event
from service.errors import InvalidEvent
from service.models import rfc3339
from service.pipeline.decode import decode_event

LIMIT = 1_048_576


def without(path: str) -> bytes:
    event = make_event()
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    del node[last]
    return orjson.dumps(event)


def with_value(path: str, value: object) -> bytes:
    event = make_event()
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    node[last] = value
    return orjson.dumps(event)


@pytest.mark.parametrize(
    ("value", "code", "stage"),
    [
        (None, "null_value", "deserialize"),
        (b"{nope", "invalid_json", "deserialize"),
        (b"\xff\xfe\x00garbage", "invalid_utf8", "deserialize"),
        (b"[1, 2]", "invalid_field", "validate"),
        (with_value("schema_version", 2), "unsupported_schema_version", "validate"),
        (without("schema_version"), "unsupported_schema_version", "validate"),
        (without("event_id"), "missing_field", "validate"),
        (without("lead.lead_id"), "missing_field", "validate"),
        (with_value("evaluation.score", "scorching"), "invalid_field", "validate"),
        (with_value("evaluation.trigger", "cron"), "invalid_field", "validate"),
        (with_value("evaluation.evaluated_at", "yesterday"), "invalid_field", "validate"),
        (with_value("evaluation.evaluated_at", "2026-11-22T10:14:59"), "invalid_field", "validate"),
        (with_value("lead.email", "x" * (LIMIT + 1)), "event_too_large", "deserialize"),
        # Valid RFC 3339, but year 10000 (and year 0) in UTC: Python cannot hold it.
        (
            with_value("evaluation.evaluated_at", "9999-12-31T23:30:00-01:00"),
            "invalid_field",
            "validate",
        ),
        (with_value("occurred_at", "0001-01-01T00:30:00+01:00"), "invalid_field", "validate"),
        # A number orjson refuses, in a field the schema ignores: the real problem is named.
        (
            with_value("schema_version", 2)[:-1] + b',"x":1e400}',
            "unsupported_schema_version",
            "validate",
        ),
    ],
)
def test_invalid_events(value: bytes | None, code: str, stage: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(value, LIMIT)
    assert (caught.value.code, caught.value.stage) == (code, stage)


def test_offsets_are_normalised_to_utc_and_extras_ignored() -> None:
    raw = with_value("evaluation.evaluated_at", "2026-11-22T12:14:59+02:00")
    data = orjson.loads(raw)
    data["something_new"] = {"x": 1}
    event = decode_event(orjson.dumps(data), LIMIT)
    assert rfc3339(event.evaluation.evaluated_at) == "2026-11-22T10:14:59Z"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"


def test_a_huge_number_in_an_ignored_field_is_accepted() -> None:
    event = decode_event(with_value("evaluation.score", "hot")[:-1] + b',"x":1e400}', LIMIT)
    assert event.evaluation.score == "hot"
