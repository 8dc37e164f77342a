"""Pure planning: which records a batch writes, merged and cut into collection calls.

Matching order (contract §4): `crm_ids.salesforce.<Object>` (or an id the record
cache or an earlier round learned, see `View`) first, then the records whose
`match.crm_field` equals the lead's `match.event_field` (SOQL compares strings
case-insensitively, so keys are case-folded). Two items that touch the same
record become one write, the newest evaluation's values winning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.destinations.mapping import (
    OnTruncate,
    crm_id,
    if_empty_fields,
    keep_filled,
    lead_value,
    propensity_value,
)
from service.destinations.salesforce.mapping import create_values, target_values
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted, Match, OnDuplicate, WriteMode

NAME = "salesforce"
LookupKey = tuple[str, str]  # (object, field)
# Folded value -> matching record ids, or the error that stopped the lookup.
Lookups = Mapping[LookupKey, Mapping[str, list[str]] | DeliveryError]
# (object, 15-character id) -> the if_empty fields as read, or the error that stopped the
# read (current.py); a record absent from it was not read: everything is written.
Current = Mapping[tuple[str, str], Mapping[str, Any] | DeliveryError]


@dataclass
class Write:
    object: str
    record_id: str | None  # None: create
    fields: dict[str, Any]
    stamp: datetime  # evaluated_at of the newest evaluation merged in
    assign: bool = False  # a create the target lets assignment rules run on
    known: bool = False  # the id came from crm_ids or the cache: the record may have moved
    match: str | None = None  # the match value, to learn the id of a record found or created
    allow_save: bool = False  # on_duplicate: allow -> Sforce-Duplicate-Rule-Header allowSave

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
class View:
    """What one item already knows before any lookup (or learned in an earlier round).

    `ids`: object -> record id (crm_ids, the cache, a converted Lead's Contact), or
    None to ignore crm_ids and match by field. `objects`: only these objects (a
    second round for records that moved); None: every target and propensity.
    """

    ids: dict[str, str | None] = field(default_factory=dict)
    objects: set[str] | None = None

    def wants(self, obj: str) -> bool:
        return self.objects is None or obj in self.objects


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    uses: list[list[int]] = field(default_factory=list)  # per item: indices into writes
    targets: list[set[int]] = field(default_factory=list)  # per item: writes that carry the score
    errors: list[list[DeliveryError]] = field(default_factory=list)  # per item
    kept: list[bool] = field(default_factory=list)  # per item: a target record kept its values
    propensity_misses: int = 0
    _index: dict[tuple[str, ...], int] = field(default_factory=dict)

    def update(
        self, item: int, write: Write, guard: frozenset[str], current: Current | None, *,
        target: bool = True,
    ) -> None:  # fmt: skip
        """An update of a record found: without the `if_empty` fields that hold a value;
        a write left with nothing to write is not made (`kept`)."""
        assert write.record_id is not None
        if guard and current is not None:
            now = current.get((write.object, write.record_id[:15]))
            if isinstance(now, DeliveryError):
                self.errors[item].append(now)
                return
            write.fields = keep_filled(write.fields, guard, now)
            if not write.fields:
                self.kept[item] = self.kept[item] or target
                return
        self.add(item, (write.object, write.record_id[:15]), write, target=target)

    def add(self, item: int, key: tuple[str, ...], write: Write, *, target: bool = True) -> None:
        at = self._index.get(key)
        if at is None:
            at = self._index[key] = len(self.writes)
            self.writes.append(write)
        else:
            held = self.writes[at]
            held.merge(write.fields, write.stamp)
            held.known = held.known or write.known
            held.allow_save = held.allow_save or write.allow_save
        if at not in self.uses[item]:
            self.uses[item].append(at)
        if target:
            self.targets[item].add(at)


def known_id(event: EvaluationCompleted, view: View | None, obj: str) -> str | None:
    if view is not None and obj in view.ids:
        return view.ids[obj]
    return crm_id(event, NAME, obj)


def pairs(config: DestinationConfig, event: EvaluationCompleted) -> list[tuple[str, Match | None]]:
    pairs: list[tuple[str, Match | None]] = [(t.object, t.match) for t in config.targets]
    prop = config.propensity
    if prop and prop.enabled and event.evaluation.propensity:
        pairs.append((prop.object, prop.match))
    return pairs


def _resolve(
    event: EvaluationCompleted, obj: str, match: Match | None, lookups: Lookups, view: View | None
) -> tuple[list[str], DeliveryError | None, str | None, bool]:
    """(record ids, lookup error, match value, ids known beforehand) for one object."""
    value = lead_value(event, match.event_field) if match is not None else None
    known = known_id(event, view, obj)
    if known:
        return [known], None, value, True
    if value is None or match is None:
        return [], None, None, False
    found = lookups.get((obj, match.crm_field), {})
    if isinstance(found, DeliveryError):
        return [], found, value, False
    return list(found.get(value.casefold(), [])), None, value, False


def build(
    config: DestinationConfig,
    events: Sequence[EvaluationCompleted],
    lookups: Lookups,
    *,
    default_limit: int,
    on_truncate: OnTruncate,
    views: Sequence[View | None] | None = None,
    current: Current | None = None,
) -> Plan:
    """`current`: what `write: if_empty` fields hold now, of the records read."""
    n = len(events)
    plan = Plan(uses=[[] for _ in range(n)], targets=[set() for _ in range(n)])
    plan.errors, plan.kept = [[] for _ in range(n)], [False] * n
    guards = [if_empty_fields(t) for t in config.targets]
    order = sorted(range(n), key=lambda i: events[i].evaluation.evaluated_at)
    for i in order:  # oldest first, so the newest evaluation's values win a merge
        event, stamp = events[i], events[i].evaluation.evaluated_at
        view = views[i] if views is not None else None
        for target, guard in zip(config.targets, guards, strict=True):
            if view is not None and not view.wants(target.object):
                continue
            allow = target.on_duplicate is OnDuplicate.ALLOW
            ids, error, value, known = _resolve(event, target.object, target.match, lookups, view)
            if error is not None:
                plan.errors[i].append(error)
                continue
            if ids:
                values = target_values(
                    target, event, default_limit=default_limit, on_truncate=on_truncate
                )
                for rid in ids:  # every matching record: duplicates in the CRM all get the score
                    write = Write(
                        target.object, rid, dict(values), stamp, known=known, match=value,
                        allow_save=allow,
                    )  # fmt: skip
                    plan.update(i, write, guard, current)
            elif target.create_if_missing:
                fields = create_values(
                    target, event, value, default_limit=default_limit, on_truncate=on_truncate
                )
                key = (
                    ("new", target.object, value.casefold())
                    if value
                    else ("new", event.event_id, target.object)
                )
                write = Write(
                    target.object, None, fields, stamp, assign=target.assign_on_create,
                    match=value, allow_save=allow,
                )  # fmt: skip
                plan.add(i, key, write)
        prop, level = config.propensity, event.evaluation.propensity
        if prop is None or not prop.enabled or level is None:
            continue  # no propensity in the event: never write the field empty
        if view is not None and not view.wants(prop.object):
            continue
        ids, error, value, known = _resolve(event, prop.object, prop.match, lookups, view)
        if error is not None:
            plan.errors[i].append(error)
        elif not ids:  # never create an account for propensity; count the miss
            plan.propensity_misses += 1
        guard = frozenset({prop.field}) if prop.write is WriteMode.IF_EMPTY else frozenset()
        for rid in ids:
            values = {prop.field: propensity_value(prop, level)}
            write = Write(prop.object, rid, values, stamp, known=known, match=value)
            plan.update(i, write, guard, current, target=False)
    return plan
