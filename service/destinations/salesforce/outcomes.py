"""Per-record results -> per-item results -> one Outcome per item, and the config-name guard.

The status follows the targets (contract §4): an item is `delivered` when a
target record (the one carrying the score) was written; propensity written to
the account alone leaves it `skipped` (`fields_kept` when a target record held
every value `write: if_empty` would have written, else `record_not_found` or
`lead_converted`), with the account in `records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.destinations.answers import unreadable
from service.destinations.base import Outcome
from service.destinations.salesforce.errors import record_error
from service.destinations.salesforce.plan import NAME, Plan, Write
from service.destinations.salesforce.soql import check_name
from service.errors import DeliveryError, PermanentError
from service.models import DeliveryState, DestinationConfig, RecordRef

Result = RecordRef | DeliveryError
# A known id (crm_ids, cache) whose record is no longer there: match by field instead.
GONE = frozenset({"entity_is_deleted", "invalid_cross_reference_key", "not_found"})
CONVERTED = "cannot_update_converted_lead"


def saved(write: Write, result: Any) -> Result:
    """One SaveResult `{"id", "success", "errors"}`. Anything else is unreadable:
    never a success without its id, never a refusal without its error."""
    if not isinstance(result, dict) or not isinstance(result.get("success"), bool):
        return unreadable(NAME, "a save result without success true or false")
    if result["success"]:
        action: Literal["updated", "created"] = "updated" if write.record_id else "created"
        rid = result.get("id")
        if rid is None and write.record_id:  # an update names its record already
            rid = write.record_id
        if not isinstance(rid, str) or not rid:  # a create without its id: never created twice
            return unreadable(NAME, "a saved record without its id")
        return RecordRef(object=write.object, id=rid, action=action)
    errors = result.get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return unreadable(NAME, "a failed save without its errors")
    code = errors[0].get("statusCode")
    if not isinstance(code, str) or not code:
        return unreadable(NAME, "a failed save without a statusCode")
    return record_error(errors, write.object, write.fields)


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


@dataclass
class ItemResult:
    targets: list[RecordRef] = field(default_factory=list)
    accounts: list[RecordRef] = field(default_factory=list)
    errors: list[DeliveryError] = field(default_factory=list)
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # obj -> (kind, old id)
    converted: bool = False  # a converted Lead that had no Contact to follow to
    kept: bool = False  # a target record holds values `write: if_empty` keeps

    def absorb(self, other: ItemResult) -> None:
        """A later round's results for the records that moved."""
        self.targets += [r for r in other.targets if r not in self.targets]
        self.accounts += [r for r in other.accounts if r not in self.accounts]
        self.errors += other.errors
        self.converted = self.converted or other.converted
        self.kept = self.kept or other.kept

    def outcome(self) -> Outcome:
        """Any permanent error -> failed; any transient -> retry; a target -> delivered."""
        permanent = next((e for e in self.errors if not e.retryable), None)
        if permanent is not None or self.errors:
            return Outcome.from_error(permanent or self.errors[0])
        accounts = [r for r in self.accounts if r not in self.targets]
        if self.targets:
            return Outcome.delivered(self.targets + accounts)
        reason = "fields_kept" if self.kept else "record_not_found"
        reason = "lead_converted" if self.converted and not self.kept else reason
        return Outcome(DeliveryState.SKIPPED, records=tuple(accounts), reason=reason)


def fold(plan: Plan, results: Sequence[Result]) -> list[ItemResult]:
    items: list[ItemResult] = []
    kept = plan.kept or [False] * len(plan.uses)
    for uses, targets, planned, held in zip(
        plan.uses, plan.targets, plan.errors, kept, strict=True
    ):
        item = ItemResult(errors=list(planned), kept=held)
        for i in uses:
            result, write = results[i], plan.writes[i]
            if isinstance(result, RecordRef):
                bucket = item.targets if i in targets else item.accounts
                if result not in bucket:
                    bucket.append(result)
            elif write.known and write.record_id and result.code in GONE:
                item.moved[write.object] = ("gone", write.record_id)
            elif write.known and write.record_id and result.code == CONVERTED:
                item.moved[write.object] = ("converted", write.record_id)
            else:
                item.errors.append(result)
        items.append(item)
    return items
