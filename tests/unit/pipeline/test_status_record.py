"""The hot-path status builder must produce exactly what the DeliveryStatus schema says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from devkit.factories import make_config, make_event
from service.destinations.base import Outcome
from service.errors import PermanentError
from service.models import (
    EVENT,
    DeliveryStatus,
    DestinationConfig,
    RecordRef,
    rfc3339,
)
from service.pipeline.status import status_record
from service.pipeline.work import Delivery
from tests.fakes import job_of


def delivery() -> Delivery:
    event = EVENT.validate_python(
        make_event(lead_id="lead_9", evaluated_at="2026-11-22T11:14:59+01:00")
    )
    config = DestinationConfig.model_validate(make_config("hubspot"))
    return Delivery(event, b"", config, job_of(), attempt=2)


def test_delivered_status_validates_against_the_model() -> None:
    d = delivery()
    now = (d.event.occurred_at + timedelta(seconds=1, milliseconds=250)).astimezone(UTC)
    outcome = Outcome.delivered([RecordRef(object="contacts", id="151", action="created")])
    key, value, latency = status_record(d, outcome, now, rfc3339(now))
    status = DeliveryStatus.model_validate_json(value)
    assert key == b"org_1:lead_9"
    assert orjson.loads(value) == status.model_dump(mode="json")
    assert status.evaluated_at == "2026-11-22T10:14:59Z"  # normalised to UTC
    assert status.completed_at == rfc3339(now) and status.completed_at.endswith(".250Z")
    assert status.records == [RecordRef(object="contacts", id="151", action="created")]
    assert status.attempts == 2 and status.destination == "hubspot"
    assert status.latency_ms == 1250 and latency == 1.25


def test_failed_status_carries_the_error() -> None:
    now = datetime.now(UTC)
    error = PermanentError("No such column 'TS_Score__c'", code="invalid_field", http_status=400)
    _, value, _ = status_record(delivery(), Outcome.from_error(error), now, rfc3339(now))
    status = DeliveryStatus.model_validate_json(value)
    assert status.status == "failed" and status.records == []
    assert status.error is not None and status.error.model_dump() == {
        "code": "invalid_field",
        "message": "No such column 'TS_Score__c'",
        "retryable": False,
        "http_status": 400,
    }


def test_held_records_take_their_size_not_orjsons_write_buffer() -> None:
    """orjson >= 3.12 hands back bytes that keep a 4 KB buffer; the outbox holds up
    to 20,000 records, so what it holds is copied to its exact size."""
    import tracemalloc

    from service.models import json_bytes

    value = {"evaluated_at": "2026-11-22T10:00:00Z", "evaluation_id": "eval_1"}
    tracemalloc.start()
    try:
        held = [json_bytes(value) for _ in range(1000)]
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) == 1000 and held[0] == orjson.dumps(value)
    assert size < 1000 * 200  # about 100 bytes each; orjson's own result took 4 KB
