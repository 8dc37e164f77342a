"""Read-only Airtable calls: nothing here writes.

`Reading` finds records by the match column (a lookup, then an update by id) and
reads what `write: if_empty` needs (current.py); `TargetWriter` (writer.py) adds
the sending. For the `Destination` protocol: `find` (the preview's lookup of one
record) and `describe` (check-config's base schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import aiohttp

from service.destinations.airtable import current
from service.destinations.airtable.client import AirtableClient, Credentials, RecordsApi
from service.destinations.airtable.errors import RecordRejected
from service.destinations.airtable.outcomes import ItemResult, batch_wide
from service.destinations.airtable.plan import (
    DESTINATION,
    Lookup,
    RecordWrite,
    TargetPlan,
    chunked,
    lookup_groups,
    match_formula,
)
from service.destinations.answers import unreadable
from service.destinations.base import Found, RecordQuery
from service.destinations.mapping import keep_filled
from service.destinations.schema import Reader
from service.errors import DeliveryError
from service.metrics import Metrics
from service.models import RecordRef, Target

Written = list[tuple[RecordWrite, RecordRef]]
Sender = Callable[[list[RecordWrite]], Awaitable[Written]]


class Reading:
    client: RecordsApi
    target: Target
    table: str
    results: list[ItemResult]
    metrics: Metrics | None
    guard: frozenset[str]  # columns written only while empty
    cells: dict[str, current.Cells]  # record id -> its guarded cells, as a lookup found them

    async def send_split(self, chunk: list[RecordWrite], send: Sender, moves: bool = False) -> None:
        raise NotImplementedError

    async def update(self, chunk: list[RecordWrite]) -> Written:
        raise NotImplementedError

    def fail(self, indices: Sequence[int], error: DeliveryError) -> None:
        for index in indices:
            self.results[index].error = error

    def _read(self) -> None:
        if self.metrics is not None:
            self.metrics.if_empty_reads.labels(DESTINATION).inc()

    async def keep(self, plan: TargetPlan) -> TargetPlan:
        """`write: if_empty`: read the guarded cells of the records named by id and of the
        upserts' records (the lookups read them themselves), and leave out what they hold."""
        guard, column = sorted(self.guard), self.target.match.crm_field if self.target.match else ""
        try:
            ids = [w.key for w in plan.by_id]
            ids_now = (
                await current.by_id(self.client, self.table, ids, guard, self._read) if ids else {}
            )
            values = [w.key for w in plan.upserts]
            values_now = (
                await current.by_value(self.client, self.table, column, values, guard, self._read)
                if values and column else {}
            )  # fmt: skip
        except (RecordRejected, DeliveryError) as exc:
            error = exc.error if isinstance(exc, RecordRejected) else exc
            if isinstance(error, DeliveryError) and batch_wide(error):
                raise error from None
            self.fail([w.index for w in [*plan.by_id, *plan.upserts]], error)
            return TargetPlan(lookups=plan.lookups, unmatched=plan.unmatched)
        mapped = frozenset(self.target.fields.values())
        kept_plan, kept = current.keep_plan(plan, self.guard, mapped, ids_now, values_now)
        for index in kept:
            self.results[index].kept = True
        return kept_plan

    async def find(
        self, group: list[str], lookups: list[Lookup], found: dict[str, list[str]]
    ) -> None:
        assert self.target.match is not None
        column = self.target.match.crm_field
        error: DeliveryError
        try:
            if not self.guard:
                found.update(await self.client.find(self.table, column, group))
                return
            fields = [column, *sorted(self.guard)]  # if_empty: the same call reads the cells
            records = await self.client.read(self.table, match_formula(column, group), fields)
            for value, rid, cells in current.with_cells(records, column):
                found.setdefault(value, []).append(rid)
                self.cells[rid] = cells
            return
        except RecordRejected as rejected:
            error = rejected.error
        except DeliveryError as exc:
            if batch_wide(exc):
                raise
            error = exc
        values = set(group)
        self.fail([lk.index for lk in lookups if lk.value in values], error)

    async def lookup_then_update(self, lookups: list[Lookup]) -> None:
        assert self.target.match is not None
        found: dict[str, list[str]] = {}
        async with asyncio.TaskGroup() as tg:
            for group in lookup_groups(self.target.match.crm_field, (lk.value for lk in lookups)):
                tg.create_task(self.find(group, lookups, found))
        writes = []
        for lk in lookups:
            for rid in found.get(lk.value, ()):
                fields = keep_filled(lk.fields, self.guard, self.cells.get(rid))
                if fields:
                    writes.append(RecordWrite(lk.index, rid, {"id": rid, "fields": fields}))
                else:  # the cells it would write all hold a value
                    self.results[lk.index].kept = True
        async with asyncio.TaskGroup() as tg:
            for chunk in chunked(writes):
                tg.create_task(self.send_split(chunk, self.update))


async def find(client: AirtableClient, query: RecordQuery) -> Found:
    """The preview's lookup: the record named by id (none when it was deleted: the write
    would match by the column), else every record whose column holds the value."""
    if query.id is not None:
        try:
            return [str((await client.get(query.object, query.id)).get("id"))]
        except RecordRejected as rejected:
            if rejected.error.code == "record_deleted":
                return []
            raise
    assert query.field is not None and query.value is not None
    found = await client.find(query.object, query.field, [query.value])
    return found.get(query.value, [])


async def describe(
    session: aiohttp.ClientSession, creds: Credentials, tables: Collection[str]
) -> dict[str, Any]:
    """check-config: `GET /v0/meta/bases/{baseId}/tables`, one call for every table; each
    table's entry (None: no such table in the base)."""
    reader = Reader(session, DESTINATION, creds.api_key.get_secret_value(), None, 0.0)
    body = await reader.get(f"{creds.base_url}/v0/meta/bases/{creds.base_id}/tables")
    listed = body.get("tables") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise unreadable(DESTINATION, "a base schema without a tables list")
    entries = {str(t["name"]): t for t in listed if isinstance(t, dict) and "name" in t}
    return {table: entries.get(table) for table in tables}
