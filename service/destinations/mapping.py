"""Pure mapping from an evaluation to destination field values (contract §4).

No I/O here: destinations call these and do the HTTP at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.models import (
    EvaluationCompleted,
    FieldKey,
    Propensity,
    PropensityMapping,
    Target,
    WriteMode,
    rfc3339,
)

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


def mapped_score(target: Target, event: EvaluationCompleted) -> str:
    """The score as the target writes it: through its values map (contract §4a), if any."""
    score = event.evaluation.score.value
    option = target.field_options.get("score")
    return option.values.get(score, score) if option is not None and option.values else score


def propensity_value(prop: PropensityMapping, level: Propensity) -> str:
    """The propensity as written: through `propensity.values`, if any."""
    return prop.values.get(level.value, level.value) if prop.values else level.value


def if_empty_fields(target: Target) -> frozenset[str]:
    """The CRM fields this target writes only while they are empty (`write: if_empty`)."""
    return frozenset(
        target.fields[key]
        for key, option in target.field_options.items()
        if option.write is WriteMode.IF_EMPTY and key in target.fields
    )


def is_empty(value: Any) -> bool:
    """What `if_empty` calls empty: null, "" (and an empty list, Airtable's empty select)."""
    return value is None or value == "" or value == []


def keep_filled(
    values: dict[str, Any], guarded: frozenset[str], current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`values` without the guarded fields that already hold something. `current`: the
    record's fields as read (a field it lacks is empty); None: a record we did not read
    (a new one), where everything is written."""
    if not guarded or current is None:
        return values
    return {k: v for k, v in values.items() if k not in guarded or is_empty(current.get(k))}


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
    values: dict[FieldKey, Any] = {"score": mapped_score(target, event), "reasoning": ev.reasoning}
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
