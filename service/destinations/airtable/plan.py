"""Pure planning of Airtable writes: no I/O.

Each item of a batch goes one of four ways for a target table: updated by record
id (`crm_ids.airtable.{table}`), upserted on the match column (create on), looked
up with `filterByFormula` and then updated by id (create off), or left unmatched.
Requests carry at most 10 records and never the same key twice, since Airtable
applies a request all or nothing and two writes to one record in one request are
ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.destinations.mapping import crm_id, lead_value, mapped_values, truncate
from service.models import DestinationConfig, EvaluationCompleted, Target

DESTINATION = "airtable"
MAX_RECORDS_PER_REQUEST = 10  # "Updates up to 10 records" (update-multiple-records)
LONG_TEXT_LIMIT = 100_000  # characters in a long text cell
LOOKUP_MAX_VALUES = 100  # one page of list records holds 100
LOOKUP_MAX_FORMULA = 6_000  # characters; the whole URL must stay under 16,000 once encoded

OnTruncate = Callable[[str], None]


@dataclass(frozen=True)
class RecordWrite:
    index: int  # the item's position in the batch
    key: str  # record id or merge value: unique within one request
    record: dict[str, Any]  # the request body entry: {"id"?, "fields"}


@dataclass(frozen=True)
class Lookup:
    index: int
    value: str
    fields: dict[str, Any]


@dataclass
class TargetPlan:
    by_id: list[RecordWrite] = field(default_factory=list)
    upserts: list[RecordWrite] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)


def create_values(
    target: Target, event: EvaluationCompleted, on_truncate: OnTruncate
) -> dict[str, Any]:
    """The `create_fields` columns (lead field -> column) the lead has values for."""
    out: dict[str, Any] = {}
    for lead_field, column in target.create_fields.items():
        name = lead_field.removeprefix("lead.")
        value = lead_value(event, f"lead.{name}")
        if value is None:
            continue  # never clear a cell the customer filled in
        out[column], cut = truncate(value, LONG_TEXT_LIMIT)
        if cut:
            on_truncate(name)
    return out


def plan_target(
    target: Target,
    events: Sequence[EvaluationCompleted],
    on_truncate: OnTruncate,
    ids: Sequence[str | None] | None = None,
    only: set[int] | None = None,
) -> TargetPlan:
    """`ids`: per item, the record id to update (crm_ids or the record cache), replacing
    crm_ids; `only`: plan these items alone (a second pass for records that went)."""
    plan = TargetPlan()
    for index, event in enumerate(events):
        if only is not None and index not in only:
            continue
        fields = mapped_values(
            target, event, default_limit=LONG_TEXT_LIMIT, on_truncate=on_truncate
        )
        record_id = ids[index] if ids is not None else crm_id(event, DESTINATION, target.object)
        if record_id is not None:
            plan.by_id.append(RecordWrite(index, record_id, {"id": record_id, "fields": fields}))
            continue
        value = lead_value(event, target.match.event_field) if target.match else None
        if target.match is None or value is None:
            # Nothing to match or upsert on: creating here would duplicate on redelivery.
            plan.unmatched.append(index)
        elif target.create_if_missing:
            merged = {**create_values(target, event, on_truncate), **fields}
            merged[target.match.crm_field] = value
            plan.upserts.append(RecordWrite(index, value, {"fields": merged}))
        else:
            plan.lookups.append(Lookup(index, value, fields))
    return plan


def chunked(
    writes: Iterable[RecordWrite], size: int = MAX_RECORDS_PER_REQUEST
) -> list[list[RecordWrite]]:
    """Full chunks of `size`, in order, with no key twice in a chunk."""
    chunks: list[list[RecordWrite]] = []
    keys: list[set[str]] = []
    first_open = 0
    for write in writes:
        open_chunks = range(first_open, len(chunks))
        n = next(
            (i for i in open_chunks if len(chunks[i]) < size and write.key not in keys[i]),
            len(chunks),
        )
        if n == len(chunks):
            chunks.append([])
            keys.append(set())
        chunks[n].append(write)
        keys[n].add(write.key)
        while first_open < len(chunks) and len(chunks[first_open]) >= size:
            first_open += 1
    return chunks


def formula_string(value: str) -> str:
    """A formula string literal: backslashes and single quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_ref(name: str) -> str:
    return "{" + name.replace("}", "\\}") + "}"


def match_formula(column: str, values: Sequence[str]) -> str:
    ref = field_ref(column)
    return "OR(" + ",".join(f"{ref}={formula_string(v)}" for v in values) + ")"


def lookup_groups(
    column: str,
    values: Iterable[str],
    max_values: int = LOOKUP_MAX_VALUES,
    max_chars: int = LOOKUP_MAX_FORMULA,
) -> list[list[str]]:
    """Distinct values split so that each OR(...) formula stays short."""
    groups: list[list[str]] = []
    length = 0
    per_value = len(field_ref(column)) + 2  # "=" and ","
    for value in dict.fromkeys(values):
        size = per_value + len(formula_string(value))
        if not groups or len(groups[-1]) >= max_values or length + size > max_chars:
            groups.append([])
            length = len("OR()")
        groups[-1].append(value)
        length += size
    return groups


def preview_values(
    config: DestinationConfig,
    target: Target,
    event: EvaluationCompleted,
    match_value: str | None,
    on_truncate: OnTruncate,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `preview` shows: the cells an update writes, and what an upsert writes."""
    fields = mapped_values(target, event, default_limit=LONG_TEXT_LIMIT, on_truncate=on_truncate)
    create = {**create_values(target, event, on_truncate), **fields}
    if target.match is not None and match_value is not None:
        create[target.match.crm_field] = match_value
    return fields, create
