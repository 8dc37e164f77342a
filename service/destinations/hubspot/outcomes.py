"""Pure: merged records -> batch inputs, and each input's result -> one Outcome per item.

An item with several records: any permanent failure -> failed; else any
transient one -> retry; else a target record written -> delivered (the status
follows the targets, contract §4); else skipped (`fields_kept` when a target
record held every if_empty value, `record_not_found`, with the
company that got the propensity in `records`, or `stale_evaluation` when newer
evaluations in the same batch took every value it would have written).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.destinations.base import Outcome
from service.destinations.hubspot.plan import Record
from service.errors import DeliveryError, TransientError
from service.models import DeliveryState, RecordRef

OpKey = tuple[str, str, str]  # (object, batch operation, idProperty or "")


@dataclass(frozen=True)
class Input:
    trace: str  # objectWriteTraceId: our index of the merged record
    body: dict[str, Any]  # {"id": ..., "idProperty"?: ..., "properties": {...}}


@dataclass(frozen=True)
class Done:
    id: str
    created: bool


@dataclass(frozen=True)
class Missing:
    """HubSpot has no such record (OBJECT_NOT_FOUND, or left out of the results)."""


Result = Done | Missing | DeliveryError


def operations(records: Sequence[Record]) -> dict[OpKey, list[Input]]:
    """Group records into batch calls; each input's trace is the record's index."""
    ops: dict[OpKey, list[Input]] = defaultdict(list)
    for n, rec in enumerate(records):
        trace = str(n)
        if rec.mode == "id":
            ops[(rec.object, "update", "")].append(
                Input(trace, {"id": rec.key, "properties": rec.properties})
            )
        elif rec.mode == "email":
            props = {**rec.create, **rec.properties} if rec.upsert else rec.properties
            body = {"idProperty": "email", "id": rec.email or rec.key, "properties": props}
            ops[(rec.object, "upsert" if rec.upsert else "update", "email")].append(
                Input(trace, body)
            )
        else:
            ops[(rec.object, "create", "")].append(
                Input(trace, {"properties": {**rec.create, **rec.properties}})
            )
    return dict(ops)


@dataclass
class ItemState:
    records: dict[tuple[str, str], RecordRef] = field(default_factory=dict)  # targets
    accounts: dict[tuple[str, str], RecordRef] = field(default_factory=dict)  # propensity only
    errors: list[DeliveryError] = field(default_factory=list)
    not_found: bool = False
    superseded: bool = False
    kept: bool = False  # a target record held every value `write: if_empty` would write

    def outcome(self) -> Outcome:
        for error in self.errors:
            if not error.retryable:
                return Outcome.from_error(error)
        if self.errors:
            return Outcome.from_error(self.errors[0])
        accounts = [r for k, r in self.accounts.items() if k not in self.records]
        if self.records:
            return Outcome.delivered([*self.records.values(), *accounts])
        if self.kept:
            return Outcome(DeliveryState.SKIPPED, records=tuple(accounts), reason="fields_kept")
        if self.superseded and not self.not_found and not accounts:
            return Outcome.skipped("stale_evaluation")
        return Outcome(DeliveryState.SKIPPED, records=tuple(accounts), reason="record_not_found")


def moved(rec: Record, result: Result) -> bool:
    """A record named by id (crm id, the cache, a search) that HubSpot no longer has
    (deleted, or merged into another): its writes are matched by field again."""
    return rec.mode == "id" and isinstance(result, Missing)


def fold(rec: Record, result: Result, states: Sequence[ItemState]) -> None:
    for item in rec.superseded:
        states[item].superseded = True
    for item in rec.writers:
        state = states[item]
        if isinstance(result, Done):
            action: Literal["created", "updated"] = "created" if result.created else "updated"
            key = (rec.object, result.id)
            bucket = state.records if item in rec.targets else state.accounts
            if key not in bucket or action == "created":
                bucket[key] = RecordRef(object=rec.object, id=result.id, action=action)
        elif isinstance(result, Missing):
            if rec.mode == "email" and not rec.upsert:
                state.not_found = True
            else:  # a create or upsert that HubSpot left out of its answer
                state.errors.append(
                    TransientError(
                        f"HubSpot {rec.object} record changed while writing", code="record_changed"
                    )
                )
        else:
            state.errors.append(result)
