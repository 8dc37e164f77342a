"""What `write: if_empty` (contract §4a) needs from Airtable: the current cells of the
columns a target writes only while they are empty.

A lookup (`filterByFormula` on the match column) asks for those columns too, at
no extra call. A record named by id (crm_ids, the record cache) is read with
`OR(RECORD_ID()='rec...',...)`, and an upsert's record by its match column, 100
a request: the extra reads if_empty costs, counted in `if_empty_reads_total`.
Airtable leaves empty cells out of a record ("", [], false), so a column a
record lacks is empty; a record without a `fields` object is `bad_response`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from service.destinations.airtable.client import RecordsApi
from service.destinations.airtable.errors import matched
from service.destinations.airtable.plan import (
    DESTINATION,
    RecordWrite,
    TargetPlan,
    formula_string,
    lookup_groups,
    match_formula,
)
from service.destinations.answers import unreadable
from service.destinations.mapping import keep_filled

Cells = dict[str, Any]
OnRead = Callable[[], None]  # counts one extra read
IDS_PER_READ = 100


def id_formula(ids: Sequence[str]) -> str:
    return "OR(" + ",".join(f"RECORD_ID()={formula_string(i)}" for i in ids) + ")"


def cells(record: dict[str, Any]) -> Cells:
    fields = record.get("fields")
    if not isinstance(fields, dict):
        raise unreadable(DESTINATION, "a record without its fields")
    return fields


def with_cells(records: list[dict[str, Any]], column: str) -> list[tuple[str, str, Cells]]:
    """(match value, id, cells) of records found by `{column} = value`."""
    pairs = matched(records, column)
    return [(value, rid, cells(r)) for (value, rid), r in zip(pairs, records, strict=True)]


async def by_id(
    client: RecordsApi, table: str, ids: Iterable[str], guard: list[str], on_read: OnRead
) -> dict[str, Cells]:
    """Record id -> its guarded cells; a record not listed no longer exists."""
    wanted = list(dict.fromkeys(ids))
    out: dict[str, Cells] = {}
    for start in range(0, len(wanted), IDS_PER_READ):
        on_read()
        formula = id_formula(wanted[start : start + IDS_PER_READ])
        for record in await client.read(table, formula, guard):
            out[record["id"]] = cells(record)
    return out


async def by_value(
    client: RecordsApi,
    table: str,
    column: str,
    values: Iterable[str],
    guard: list[str],
    on_read: OnRead,
) -> dict[str, list[Cells]]:
    """Match value -> the cells of each record holding it (an upsert's record, if any)."""
    out: dict[str, list[Cells]] = {}
    for group in lookup_groups(column, values):
        on_read()
        records = await client.read(table, match_formula(column, group), [column, *guard])
        for value, _, found in with_cells(records, column):
            out.setdefault(value, []).append(found)
    return out


def _kept(
    write: RecordWrite, guard: frozenset[str], mapped: frozenset[str], now: Cells | None
) -> RecordWrite | None:
    fields = keep_filled(write.record["fields"], guard, now)
    if not mapped & set(fields):
        return None  # every mapped cell it would write holds a value
    return RecordWrite(write.index, write.key, {**write.record, "fields": fields})


def keep_plan(
    plan: TargetPlan,
    guard: frozenset[str],
    mapped: frozenset[str],
    ids_now: dict[str, Cells],
    values_now: dict[str, list[Cells]],
) -> tuple[TargetPlan, set[int]]:
    """The plan without the guarded cells that hold a value; items whose writes are left
    with none of the target's mapped cells are `kept` (nothing sent for them). An
    upsert whose value matches no record (a create) or several (Airtable refuses it)
    keeps every cell."""
    kept: set[int] = set()
    out = TargetPlan(lookups=plan.lookups, unmatched=plan.unmatched)
    for w in plan.by_id:
        written = _kept(w, guard, mapped, ids_now.get(w.key))
        if written is None:
            kept.add(w.index)
        else:
            out.by_id.append(written)
    for w in plan.upserts:
        found = values_now.get(w.key, [])
        written = _kept(w, guard, mapped, found[0] if len(found) == 1 else None)
        if written is None:
            kept.add(w.index)
        else:
            out.upserts.append(written)
    return out, kept
