"""What an item ends with for each target, and the one Outcome it gets.

Each item of a target ends with its records, nothing (no match, or `kept`: its
record held every value `write: if_empty` would write), or an error; `combine`
folds an item's targets into one Outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service.destinations.base import Outcome
from service.errors import AuthFailed, DeliveryError, Forbidden, TransientError
from service.models import RecordRef


@dataclass
class ItemResult:
    """One item's fate for one target: records written, or an error."""

    records: list[RecordRef] = field(default_factory=list)
    error: DeliveryError | None = None
    kept: bool = False  # its record held every value `write: if_empty` would write


def combine(results: Sequence[ItemResult]) -> Outcome:
    """Across targets: permanent failure > transient > delivered > fields_kept >
    record_not_found."""
    errors = [r.error for r in results if r.error is not None]
    for error in errors:
        if not error.retryable:
            return Outcome.from_error(error)
    if errors:
        return Outcome.from_error(errors[0])
    records = [ref for r in results for ref in r.records]
    if records:
        return Outcome.delivered(records)
    return Outcome.skipped("fields_kept" if any(r.kept for r in results) else "record_not_found")


def batch_wide(error: DeliveryError) -> bool:
    """Auth, permission, rate limit and outages concern every item: raise them."""
    return isinstance(error, TransientError | AuthFailed | Forbidden)
