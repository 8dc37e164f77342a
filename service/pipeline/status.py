"""DeliveryStatus records (§5), built straight to JSON on the hot path.

`DeliveryStatus` (models.py) stays the schema; a test checks that every record
built here validates against it field for field.
"""

from __future__ import annotations

from datetime import datetime

from service.destinations.base import Outcome
from service.models import json_bytes
from service.pipeline.work import Delivery


def status_record(
    d: Delivery, outcome: Outcome, now: datetime, now_text: str
) -> tuple[bytes, bytes, float]:
    """(key, value, latency seconds) of the status for this delivery and outcome;
    `now_text` is `rfc3339(now)`, formatted once per batch."""
    event = d.event
    latency_s = max(0.0, (now - event.occurred_at).total_seconds())
    value = json_bytes(
        {
            "schema_version": 1,
            "event_id": event.event_id,
            "org_id": event.org_id,
            "lead_id": event.lead.lead_id,
            "evaluation_id": event.evaluation.evaluation_id,
            "destination": d.destination,
            "status": outcome.state.value,
            "reason": outcome.reason,
            "records": [
                {"object": r.object, "id": r.id, "action": r.action} for r in outcome.records
            ],
            "error": outcome.error.model_dump() if outcome.error else None,
            "attempts": d.attempt,
            "evaluated_at": d.evaluated_at_text,
            "completed_at": now_text,
            "latency_ms": int(latency_s * 1000),
        }
    )
    return f"{event.org_id}:{event.lead.lead_id}".encode(), value, latency_s
