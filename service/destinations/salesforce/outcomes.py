"""Per-record results -> one Outcome per item, and the config-name guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from service.destinations.base import Outcome
from service.destinations.salesforce.errors import record_error
from service.destinations.salesforce.plan import Plan, Write
from service.destinations.salesforce.soql import check_name
from service.errors import DeliveryError, PermanentError
from service.models import DestinationConfig, RecordRef

Result = RecordRef | DeliveryError


def saved(write: Write, result: Any) -> Result:
    if isinstance(result, dict) and result.get("success"):
        action: Literal["updated", "created"] = "updated" if write.record_id else "created"
        rid = str(result.get("id") or write.record_id)
        return RecordRef(object=write.object, id=rid, action=action)
    errors = result.get("errors", []) if isinstance(result, dict) else []
    return record_error(errors, write.object)


def check_names(config: DestinationConfig) -> None:
    """Config names go into SOQL and JSON unquoted: refuse anything but API names."""
    names = [t.object for t in config.targets] + [
        f for t in config.targets for f in t.fields.values()
    ]
    names += [t.match.crm_field for t in config.targets if t.match is not None]
    if config.propensity is not None and config.propensity.enabled:
        names += [
            config.propensity.object,
            config.propensity.field,
            config.propensity.match.crm_field,
        ]
    for name in names:
        try:
            check_name(name)
        except ValueError as exc:
            raise PermanentError(f"salesforce config: {exc}", code="invalid_field") from None


def fold(plan: Plan, results: Sequence[Result]) -> list[Outcome]:
    """Per item: any permanent error -> failed; any transient -> retry; else delivered/skipped."""
    outcomes: list[Outcome] = []
    for uses, planned_errors in zip(plan.uses, plan.errors, strict=True):
        mine = [results[i] for i in uses]
        errors = planned_errors + [r for r in mine if isinstance(r, DeliveryError)]
        refs = list(dict.fromkeys(r for r in mine if isinstance(r, RecordRef)))
        permanent = next((e for e in errors if not e.retryable), None)
        transient = next((e for e in errors if e.retryable), None)
        if permanent is not None or transient is not None:
            outcomes.append(Outcome.from_error(permanent or transient))  # type: ignore[arg-type]
        elif refs:
            outcomes.append(Outcome.delivered(refs))
        else:
            outcomes.append(Outcome.skipped("record_not_found"))
    return outcomes
