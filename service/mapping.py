"""Pure mapping from an evaluation to destination field values (contract §4).

No I/O here: destinations call these and do the HTTP at the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from service.models import EvaluationCompleted, FieldKey, Target, rfc3339

OnTruncate = Callable[[str], None]


def lead_value(event: EvaluationCompleted, path: str) -> str | None:
    """`lead.email` -> the lead's email, or None when the lead has none."""
    _, _, name = path.partition(".")
    value = getattr(event.lead, name, None)
    return value if isinstance(value, str) and value else None


def crm_id(event: EvaluationCompleted, destination: str, obj: str) -> str | None:
    return event.lead.crm_ids.get(destination, {}).get(obj) or None


def epoch_ms_midnight(value: datetime) -> int:
    """HubSpot `date` properties take midnight UTC in epoch milliseconds."""
    day = value.astimezone(UTC).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def truncate(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def mapped_values(
    target: Target,
    event: EvaluationCompleted,
    *,
    default_limit: int,
    on_truncate: OnTruncate | None = None,
) -> dict[str, Any]:
    """Destination field name -> value for the TrailSpark fields the target maps.

    An empty text (a reasoning of "") is left out, not written: the event does not
    carry that value, and writing "" would blank what the field holds.
    """
    ev = event.evaluation
    values: dict[FieldKey, Any] = {"score": ev.score.value, "reasoning": ev.reasoning}
    if target.field_types.get("evaluated_at") == "date":
        values["evaluated_at"] = epoch_ms_midnight(ev.evaluated_at)
    else:
        values["evaluated_at"] = rfc3339(ev.evaluated_at)
    out: dict[str, Any] = {}
    for key, crm_field in target.fields.items():
        value = values[key]
        if value == "":
            continue
        if isinstance(value, str):
            value, cut = truncate(value, target.max_lengths.get(key, default_limit))
            if cut and on_truncate is not None:
                on_truncate(key)
        out[crm_field] = value
    return out
