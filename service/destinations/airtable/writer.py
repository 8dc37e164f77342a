"""Carries out one target's plan. Chunks go out concurrently (the base pacer
paces them); a record-level rejection splits its chunk in halves until the record
at fault is alone; every item ends with its records, nothing (no match, or its
cells kept by `write: if_empty`) or an error.

An update by a known id (crm_ids, the record cache) whose record was deleted is
not an error: that item is planned again by its match column, in the same write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from service.destinations.airtable.client import RecordsApi
from service.destinations.airtable.errors import RecordRejected
from service.destinations.airtable.lookup import Reading, Sender, Written
from service.destinations.airtable.outcomes import ItemResult, batch_wide
from service.destinations.airtable.plan import (
    DESTINATION,
    OnTruncate,
    RecordWrite,
    TargetPlan,
    chunked,
    plan_target,
)
from service.destinations.cache import CacheKey, RecordCache, cache_key
from service.destinations.mapping import crm_id, if_empty_fields, lead_value
from service.errors import DeliveryError, TransientError
from service.metrics import Metrics
from service.models import EvaluationCompleted, RecordRef, Target


class TargetWriter(Reading):
    def __init__(
        self,
        client: RecordsApi,
        target: Target,
        size: int,
        cache: RecordCache | None = None,
        org: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        self.client, self.target, self.table = client, target, target.object
        self.results = [ItemResult() for _ in range(size)]
        self.cache, self.org, self.metrics = cache, org, metrics
        self.gone: set[int] = set()  # items whose known record id no longer exists
        self.guard = if_empty_fields(target)  # columns written only while empty
        self.cells = {}

    def key(self, value: str) -> CacheKey:
        column = self.target.match.crm_field if self.target.match else ""
        return cache_key(self.org, DESTINATION, self.table, f"{column}\0{value}", fold=False)

    def known_ids(self, events: Sequence[EvaluationCompleted]) -> list[str | None]:
        """Per item: its crm id (learned into the cache), else a cached id."""
        out: list[str | None] = []
        for event in events:
            rid = crm_id(event, DESTINATION, self.table)
            match = self.target.match
            value = lead_value(event, match.event_field) if match is not None else None
            if self.cache is not None and value is not None:
                if rid is not None:
                    self.cache.put(self.key(value), rid)
                else:
                    rid = self.cache.get(self.key(value))
            out.append(rid)
        return out

    def learn(self, events: Sequence[EvaluationCompleted], index: int, rid: str) -> None:
        match = self.target.match
        value = lead_value(events[index], match.event_field) if match is not None else None
        if self.cache is not None and value is not None:
            self.cache.put(self.key(value), rid)

    async def run(self, events: Sequence[EvaluationCompleted], on_truncate: OnTruncate) -> None:
        known = self.known_ids(events)
        await self._run(plan_target(self.target, events, on_truncate, known), events, known=True)
        if self.gone:  # deleted records: match by the column instead, this same write
            gone, self.gone = self.gone, set()
            for index in gone:
                if known[index] is not None:
                    self.cache_drop(events, index)
            again = plan_target(self.target, events, on_truncate, [None] * len(events), gone)
            await self._run(again, events, known=False)

    def cache_drop(self, events: Sequence[EvaluationCompleted], index: int) -> None:
        match = self.target.match
        value = lead_value(events[index], match.event_field) if match is not None else None
        if self.cache is not None and value is not None:
            self.cache.drop(self.key(value))

    async def _run(
        self, plan: TargetPlan, events: Sequence[EvaluationCompleted], *, known: bool
    ) -> None:
        if self.guard:
            plan = await self.keep(plan)
        async with asyncio.TaskGroup() as tg:
            for chunk in chunked(plan.by_id):
                tg.create_task(self.send_split(chunk, self.update, moves=known))
            for chunk in chunked(plan.upserts):
                tg.create_task(self.send_split(chunk, self.upsert))
            if plan.lookups:
                tg.create_task(self.lookup_then_update(plan.lookups))
        for index in range(len(events)):
            refs = self.results[index].records
            if len(refs) == 1 and index not in self.gone:  # a duplicate match is not learned
                self.learn(events, index, refs[0].id)

    async def send_split(self, chunk: list[RecordWrite], send: Sender, moves: bool = False) -> None:
        """`moves`: a deleted record is not this item's failure but a reason to match again."""
        try:
            written = await send(chunk)
        except RecordRejected as rejected:
            if len(chunk) == 1 and moves and rejected.error.code == "record_deleted":
                self.gone.add(chunk[0].index)
                return
            if len(chunk) == 1:  # the record at fault: a refused value is `invalid_value`
                fields = chunk[0].record.get("fields")
                error = rejected.for_record(self.table, fields if isinstance(fields, dict) else {})
                self.fail([chunk[0].index], error)
                return
            if rejected.applies_to_all([w.record for w in chunk]):
                self.fail([w.index for w in chunk], rejected.error)
                return
            half = len(chunk) // 2
            await self.send_split(chunk[:half], send, moves)
            await self.send_split(chunk[half:], send, moves)
            return
        except DeliveryError as error:
            if batch_wide(error):
                raise
            self.fail([w.index for w in chunk], error)  # e.g. the table does not exist
            return
        for write, ref in written:
            self.results[write.index].records.append(ref)

    def refs(
        self, chunk: list[RecordWrite], records: list[dict[str, Any]], created: set[str]
    ) -> Written:
        if len(records) != len(chunk):
            raise TransientError("Airtable answered with other records", code="bad_response")
        return [
            (
                w,
                RecordRef(
                    object=self.table,
                    id=r["id"],
                    action="created" if r["id"] in created else "updated",
                ),
            )
            for w, r in zip(chunk, records, strict=True)
        ]

    async def update(self, chunk: list[RecordWrite]) -> Written:
        return self.refs(
            chunk, await self.client.update(self.table, [w.record for w in chunk]), set()
        )

    async def upsert(self, chunk: list[RecordWrite]) -> Written:
        assert self.target.match is not None
        column = self.target.match.crm_field
        records, created = await self.client.upsert(self.table, column, [w.record for w in chunk])
        return self.refs(chunk, records, created)
