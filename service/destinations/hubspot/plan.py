"""Pure planning: which HubSpot records each evaluation writes, with which values.

One `Write` per config target, plus one for propensity. Matching (crm id,
email, search) happens later; here we only decide what to look for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.destinations.mapping import (
    crm_id,
    if_empty_fields,
    lead_value,
    mapped_values,
    propensity_value,
    truncate,
)
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted, Target, WriteMode

NAME = "hubspot"
TEXT_LIMIT = 65_536  # characters in a HubSpot single- or multi-line text property
# Standard properties filled from the lead when a record is created (contract §4).
CREATE_FIELDS: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "company": "company",
    },
    "companies": {"name": "company", "domain": "domain"},
}

OnTruncate = Callable[[str], None]
# record_key() -> the properties `write: if_empty` reads there (a search, current.py's
# batch read); None: read, and no such record; an error: the read failed.
Current = dict[tuple[str, str, str], dict[str, Any] | DeliveryError | None]


@dataclass(frozen=True)
class Lookup:
    """Find the record of `object` whose property `prop` equals `value`."""

    object: str
    prop: str
    value: str

    @property
    def by_email(self) -> bool:
        """Contacts by email: HubSpot takes email as an idProperty (upsert, update)."""
        return self.object == "contacts" and self.prop == "email"


@dataclass
class Write:
    """One record one evaluation wants written."""

    item: int
    object: str
    properties: dict[str, Any]
    evaluated_at: datetime
    record_id: str | None = None  # from lead.crm_ids: update that record
    lookup: Lookup | None = None
    create: dict[str, Any] | None = None  # set when the record may be created
    propensity: bool = False
    fallback: Lookup | None = None  # how to find the record if the crm id no longer resolves
    fallback_create: dict[str, Any] | None = None
    found_id: str | None = None  # filled in by matching (a search, or the record cache)
    error: DeliveryError | None = None  # matching failed (search refused, timed out)
    guarded: frozenset[str] = frozenset()  # properties written only while empty (if_empty)
    kept: bool = False  # its record holds every guarded value it would write: not sent
    wanted: dict[str, Any] = field(init=False)  # the properties before if_empty took any out
    known: bool = field(init=False)

    def __post_init__(self) -> None:
        self.known = self.record_id is not None
        self.wanted = self.properties


def lead_fields(event: EvaluationCompleted, obj: str, on_truncate: OnTruncate) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop, name in CREATE_FIELDS[obj].items():
        value = lead_value(event, f"lead.{name}")
        if value is not None:
            value, cut = truncate(value, TEXT_LIMIT)
            if cut:
                on_truncate(prop)
            out[prop] = value
    return out


def plan_item(
    config: DestinationConfig, event: EvaluationCompleted, item: int, on_truncate: OnTruncate
) -> list[Write]:
    writes: list[Write] = []
    when = event.evaluation.evaluated_at
    for target in config.targets:
        props = mapped_values(target, event, default_limit=TEXT_LIMIT, on_truncate=on_truncate)
        write = Write(item, target.object, props, when, crm_id(event, NAME, target.object))
        write.guarded = if_empty_fields(target)
        if target.match is not None:
            value = lead_value(event, target.match.event_field)
            if value is not None:  # no key, no match: creating would duplicate every time
                lookup = Lookup(target.object, target.match.crm_field, value)
                create = None
                if target.create_if_missing:
                    create = {
                        **lead_fields(event, target.object, on_truncate),
                        target.match.crm_field: value,
                    }
                if write.record_id is None:
                    write.lookup, write.create = lookup, create
                else:  # the crm id wins; the match field is the way back if it moved
                    write.fallback, write.fallback_create = lookup, create
        writes.append(write)
    prop = config.propensity
    if prop is not None and prop.enabled and event.evaluation.propensity is not None:
        write = Write(
            item,
            prop.object,
            {prop.field: propensity_value(prop, event.evaluation.propensity)},
            when,
            crm_id(event, NAME, prop.object),
            propensity=True,
            guarded=frozenset({prop.field} if prop.write is WriteMode.IF_EMPTY else ()),
        )
        value = lead_value(event, prop.match.event_field)
        if value is not None:
            lookup = Lookup(prop.object, prop.match.crm_field, value)
            if write.record_id is None:
                write.lookup = lookup
            else:
                write.fallback = lookup
        writes.append(write)
    return writes


def fall_back(write: Write) -> Write:
    """The same write, matched by field: its record (crm id, cache) is gone or merged."""
    return Write(
        write.item,
        write.object,
        write.wanted,  # read again against the record it finds
        write.evaluated_at,
        lookup=write.fallback or write.lookup,
        create=write.fallback_create if write.fallback is not None else write.create,
        propensity=write.propensity,
        guarded=write.guarded,
    )


@dataclass
class Record:
    """The merged write to one record: the newest value of each property wins."""

    object: str
    key: str  # record id, email (lower case) or the lookup value of a record to create
    mode: str  # "id" | "email" | "create"
    properties: dict[str, Any] = field(default_factory=dict)
    create: dict[str, Any] = field(default_factory=dict)
    writers: set[int] = field(default_factory=set)  # items that own a property here
    targets: set[int] = field(default_factory=set)  # items whose target (not propensity) it is
    writes: list[Write] = field(default_factory=list)  # every write that landed here
    superseded: set[int] = field(default_factory=set)  # items whose values all lost
    known: bool = False  # some write named this record by crm id
    email: str | None = None  # the email as the newest evaluation spelled it
    upsert: bool = False
    match: str = ""  # the property looked up (to remember records we create)


def record_key(write: Write) -> tuple[str, str, str] | None:
    """(object, mode, key) of the record a write lands on; None when not found."""
    if write.record_id or write.found_id:
        return write.object, "id", str(write.record_id or write.found_id)
    if write.lookup is not None and write.lookup.by_email:
        return write.object, "email", write.lookup.value.lower()
    if write.lookup is not None and write.create is not None:
        return write.object, "create", write.lookup.value.lower()
    return None


def merge(writes: Sequence[Write]) -> list[Record]:
    """Group writes by record; the newest evaluation wins, property by property.

    An evaluation is a writer of the record when it set a value that stayed, or
    when the record ends up holding every value it asked for (five leads of one
    company with the same propensity all wrote it). Otherwise it was superseded.
    """
    records: dict[tuple[str, str, str], Record] = {}
    wanted: dict[tuple[str, str, str], list[Write]] = {}
    for write in sorted(writes, key=lambda w: (w.evaluated_at, w.item)):
        key = record_key(write)
        if key is None:
            continue
        rec = records.get(key)
        if rec is None:  # not setdefault: a Record is six containers, built once per key
            rec = records[key] = Record(key[0], key[2], key[1])
        rec.properties.update(write.properties)
        rec.create.update(write.create or {})
        rec.known = rec.known or write.known
        rec.match = write.lookup.prop if write.lookup is not None else rec.match
        if write.lookup is not None and write.lookup.by_email:
            rec.email = write.lookup.value
            rec.upsert = rec.upsert or write.create is not None
        wanted.setdefault(key, []).append(write)
        rec.writes.append(write)
        if not write.propensity:
            rec.targets.add(write.item)
    for key, rec in records.items():
        for write in wanted[key]:
            kept = all(rec.properties.get(k) == v for k, v in write.properties.items())
            (rec.writers if kept else rec.superseded).add(write.item)
        rec.superseded -= rec.writers  # an item may reach one record twice
    return list(records.values())


def preview_values(
    config: DestinationConfig,
    target: Target,
    event: EvaluationCompleted,
    match_value: str | None,
    on_truncate: OnTruncate,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `preview` shows: the properties an update writes, and what a create writes."""
    one = config.model_copy(update={"targets": [target], "propensity": None})
    [write] = plan_item(one, event, 0, on_truncate)
    return write.properties, {**(write.create or write.fallback_create or {}), **write.properties}
