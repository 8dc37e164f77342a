"""The Salesforce destination: batched lookups, then batched collection writes.

One `write` = one SOQL query per (object, match field) for the whole batch, then
`PATCH`/`POST /composite/sobjects` calls of up to 200 records with
`allOrNone=false`, whose per-record results become per-item outcomes. Each
round (a second one for records that moved) carries its `lookup.Round`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import aiohttp

from service.destinations.answers import contained, one_per_item
from service.destinations.base import (
    Batch,
    DestinationContext,
    Found,
    Outcome,
    RecordQuery,
    account_of,
)
from service.destinations.cache import RecordCache
from service.destinations.http import new_session
from service.destinations.salesforce import current, known, lookup, writer
from service.destinations.salesforce import plan as planning
from service.destinations.salesforce.client import COLLECTION_LIMIT, NAME, Credentials, RestClient
from service.destinations.salesforce.lookup import Round
from service.destinations.salesforce.options import SalesforceOptions
from service.destinations.salesforce.outcomes import ItemResult, check_names, fold
from service.models import DestinationConfig


class SalesforceDestination:
    name = NAME

    def __init__(self, ctx: DestinationContext, options: SalesforceOptions | None = None) -> None:
        self.settings, self.metrics = ctx.settings, ctx.metrics
        self.options = options or SalesforceOptions.from_mapping(ctx.options.get(NAME))
        self.max_batch_size = self.options.max_batch_size
        self.collection_size = min(self.options.collection_size, COLLECTION_LIMIT)
        self._session: aiohttp.ClientSession | None = None
        self._client: RestClient | None = None
        self.cache = RecordCache(NAME, ctx.metrics, self.options.cache_size)

    async def setup(self) -> None:
        if self._session is None:
            s, o = self.settings, self.options
            self._session = new_session(s.destination_ca_file, s.destination_timeout_s)
            self._client = RestClient(
                self._session,
                self.metrics,
                quota_retry_s=o.quota_retry_s,
                limit_retry_s=o.limit_retry_s,
                token_lifetime_s=o.token_lifetime_s,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = self._client = None

    async def write(self, batch: Batch) -> list[Outcome]:
        """Only DeliveryErrors leave: an answer no parser foresaw is `bad_response`."""
        outcomes = await contained(NAME, self._write(batch))
        one_per_item(NAME, outcomes, len(batch.items))
        return outcomes

    async def _write(self, batch: Batch) -> list[Outcome]:
        await self.setup()
        assert self._client is not None
        config = batch.config
        creds = Credentials.parse(batch.credentials, account_of(config))
        check_names(config)
        self._client.budget.configure(creds.account, config.max_daily_api_share)
        self._client.budget.check(creds.account)  # spent: no request at all
        events = [item.event for item in batch.items]
        views = [known.view_of(config, event, self.cache) for event in events]
        first = Round(self._client, creds, config, events, views, self.options)
        items = await self._round(first)
        if any(item.moved for item in items):  # match by field again, in this delivery
            leads = known.converted_leads(items)
            contacts = await lookup.converted_contacts(first, leads) if leads else {}
            again = known.second_round(config, events[0].org_id, items, contacts, self.cache)
            redo = [n for n, view in enumerate(again) if view is not None]
            second = await self._round(first.again(redo, [again[n] for n in redo]))
            for n, item in zip(redo, second, strict=True):
                items[n].absorb(item)
        return [item.outcome() for item in items]

    async def _round(self, rnd: Round) -> list[ItemResult]:
        now: current.Current = {}
        guarded = current.guarded(rnd.config)
        lookups = await lookup.by_field(rnd, guarded, now)
        if wanted := current.known_reads(rnd.config, rnd.events, rnd.views):
            queries = current.id_queries(wanted, guarded, self.options.uri_budget)
            self.metrics.if_empty_reads.labels(NAME).inc(len(queries))
            answers = await rnd.queries([q for _, _, q in queries])
            current.read_answers(now, queries, answers, guarded)
        truncations = self.metrics.truncations
        plan = planning.build(
            rnd.config, rnd.events, lookups,
            default_limit=self.options.default_text_limit,
            on_truncate=lambda key: truncations.labels(NAME, key).inc(),
            views=rnd.views, current=now,
        )  # fmt: skip
        if plan.propensity_misses:
            self.metrics.propensity_unmatched.labels(NAME).inc(plan.propensity_misses)
        results = await writer.execute(rnd, plan, self.collection_size)
        if rnd.events:
            known.learn(self.cache, rnd.events[0].org_id, plan, results)
        return fold(plan, results)

    async def _reader(self, config: DestinationConfig, data: Mapping[str, Any]) -> Credentials:
        await self.setup()
        return Credentials.parse(data, account_of(config))

    async def lookup(
        self, config: DestinationConfig, credentials: Mapping[str, Any], query: RecordQuery
    ) -> Found:
        creds = await self._reader(config, credentials)
        assert self._client is not None
        return await contained(NAME, lookup.find(self._client, creds, query))

    async def describe(
        self, config: DestinationConfig, credentials: Mapping[str, Any], objects: Collection[str]
    ) -> dict[str, Any]:
        creds = await self._reader(config, credentials)
        assert self._session is not None
        return await lookup.describe(self._session, creds, objects)
