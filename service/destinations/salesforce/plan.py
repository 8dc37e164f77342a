"""Pure planning: which records a batch writes, merged and cut into collection calls.

Matching order (contract §4): `crm_ids.salesforce.<Object>` first, then the
records whose `match.crm_field` equals the lead's `match.event_field` (SOQL
compares strings case-insensitively, so keys are case-folded). Two items that
touch the same record become one write, the newest evaluation's values winning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.destinations.salesforce.mapping import create_values, target_values
from service.errors import DeliveryError
from service.mapping import OnTruncate, crm_id, lead_value
from service.models import DestinationConfig, EvaluationCompleted, Match

NAME = "salesforce"
LookupKey = tuple[str, str]  # (object, field)
# Folded value -> matching record ids, or the error that stopped the lookup.
Lookups = Mapping[LookupKey, Mapping[str, list[str]] | DeliveryError]


@dataclass
class Write:
    object: str
    record_id: str | None  # None: create
    fields: dict[str, Any]
    stamp: datetime  # evaluated_at of the newest evaluation merged in

    def merge(self, fields: dict[str, Any], stamp: datetime) -> None:
        if stamp >= self.stamp:
            self.fields.update(fields)
            self.stamp = stamp
        else:
            for key, value in fields.items():
                self.fields.setdefault(key, value)

    def body(self) -> dict[str, Any]:
        head: dict[str, Any] = {"attributes": {"type": self.object}}
        if self.record_id is not None:
            head["id"] = self.record_id
        return {**head, **self.fields}


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    uses: list[list[int]] = field(default_factory=list)  # per item: indices into writes
    errors: list[list[DeliveryError]] = field(default_factory=list)  # per item
    propensity_misses: int = 0
    _index: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(self, item: int, key: tuple[str, ...], write: Write) -> None:
        at = self._index.get(key)
        if at is None:
            at = self._index[key] = len(self.writes)
            self.writes.append(write)
        else:
            self.writes[at].merge(write.fields, write.stamp)
        if at not in self.uses[item]:
            self.uses[item].append(at)


def _wants_lookup(event: EvaluationCompleted, obj: str, match: Match | None) -> str | None:
    if match is None or crm_id(event, NAME, obj):
        return None
    return lead_value(event, match.event_field)


def needed_lookups(
    config: DestinationConfig, events: Sequence[EvaluationCompleted]
) -> dict[LookupKey, list[str]]:
    """(object, field) -> the values to look up, for one batched query each."""
    wanted: dict[LookupKey, dict[str, None]] = {}
    pairs: list[tuple[str, Match | None]] = [(t.object, t.match) for t in config.targets]
    prop = config.propensity
    for event in events:
        extra = (
            [(prop.object, prop.match)]
            if prop and prop.enabled and event.evaluation.propensity
            else []
        )
        for obj, match in pairs + extra:
            value = _wants_lookup(event, obj, match)
            if value is not None and match is not None:
                wanted.setdefault((obj, match.crm_field), {})[value] = None
    return {key: list(values) for key, values in wanted.items()}


def _resolve(
    event: EvaluationCompleted, obj: str, match: Match | None, lookups: Lookups
) -> tuple[list[str], DeliveryError | None, str | None]:
    """(record ids, lookup error, match value) for one object of one event."""
    known = crm_id(event, NAME, obj)
    if known:
        return [known], None, None
    value = _wants_lookup(event, obj, match)
    if value is None or match is None:
        return [], None, None
    found = lookups.get((obj, match.crm_field), {})
    if isinstance(found, DeliveryError):
        return [], found, value
    return list(found.get(value.casefold(), [])), None, value


def build(
    config: DestinationConfig,
    events: Sequence[EvaluationCompleted],
    lookups: Lookups,
    *,
    default_limit: int,
    on_truncate: OnTruncate,
) -> Plan:
    plan = Plan(uses=[[] for _ in events], errors=[[] for _ in events])
    order = sorted(range(len(events)), key=lambda i: events[i].evaluation.evaluated_at)
    for i in order:  # oldest first, so the newest evaluation's values win a merge
        event, stamp = events[i], events[i].evaluation.evaluated_at
        for target in config.targets:
            ids, error, value = _resolve(event, target.object, target.match, lookups)
            if error is not None:
                plan.errors[i].append(error)
                continue
            if ids:
                values = target_values(
                    target, event, default_limit=default_limit, on_truncate=on_truncate
                )
                for rid in ids:  # every matching record: duplicates in the CRM all get the score
                    plan.add(
                        i, (target.object, rid[:15]), Write(target.object, rid, dict(values), stamp)
                    )
            elif target.create_if_missing:
                fields = create_values(
                    target, event, value, default_limit=default_limit, on_truncate=on_truncate
                )
                key = (
                    ("new", target.object, value.casefold())
                    if value
                    else ("new", event.event_id, target.object)
                )
                plan.add(i, key, Write(target.object, None, fields, stamp))
        prop, level = config.propensity, event.evaluation.propensity
        if prop is None or not prop.enabled or level is None:
            continue
        ids, error, _ = _resolve(event, prop.object, prop.match, lookups)
        if error is not None:
            plan.errors[i].append(error)
        elif not ids:  # never create an account for propensity; count the miss
            plan.propensity_misses += 1
        for rid in ids:
            plan.add(
                i,
                (prop.object, rid[:15]),
                Write(prop.object, rid, {prop.field: level.value}, stamp),
            )
    return plan


def requests(plan: Plan, size: int) -> Iterator[tuple[str, list[int]]]:
    """(method, write indices): PATCH updates, POST creates, objects grouped, <= size each."""
    for method, want_id in (("PATCH", True), ("POST", False)):
        picked = [i for i, w in enumerate(plan.writes) if (w.record_id is not None) == want_id]
        picked.sort(key=lambda i: plan.writes[i].object)  # fewer type chunks per request
        for start in range(0, len(picked), size):
            yield method, picked[start : start + size]
