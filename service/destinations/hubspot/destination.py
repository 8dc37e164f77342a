"""The HubSpot destination: contacts and companies over CRM v3 batch endpoints.

write(): plan each item's records -> find the ones that need a search ->
merge writes per record (newest wins) -> batch update/upsert/create, 100
inputs a call, within the token's budget -> one Outcome per item.
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
from service.destinations.budget import DailyBudget
from service.destinations.cache import RecordCache
from service.destinations.http import new_session
from service.destinations.hubspot import lookup, writer
from service.destinations.hubspot.client import Credentials, HubSpotClient
from service.destinations.hubspot.current import keep, read_current
from service.destinations.hubspot.limits import TokenLimits, daily_wait
from service.destinations.hubspot.lookup import Round, lookup_key, resolve
from service.destinations.hubspot.options import HubSpotOptions
from service.destinations.hubspot.outcomes import Done, ItemState, fold, moved
from service.destinations.hubspot.plan import (
    NAME,
    Current,
    Write,
    fall_back,
    merge,
    plan_item,
    record_key,
)
from service.destinations.idle import IdleMap
from service.destinations.oauth import TokenSource
from service.models import DestinationConfig

LIMITS_IDLE_S = 86_400.0
MAX_ACCOUNTS = 100_000


class HubSpotDestination:
    name = NAME

    def __init__(self, ctx: DestinationContext, options: HubSpotOptions | None = None) -> None:
        self.settings, self.metrics = ctx.settings, ctx.metrics
        self.options = options or HubSpotOptions.from_mapping(ctx.options.get(NAME))
        self.max_batch_size = self.options.max_batch_size
        self._session: aiohttp.ClientSession | None = None
        # Per credentials file; an account unused for a day goes (its windows are empty).
        self._limits: IdleMap[str, TokenLimits] = IdleMap(
            idle_s=LIMITS_IDLE_S, max_entries=MAX_ACCOUNTS
        )
        self._handoffs = ctx.handoffs
        self.cache = RecordCache(NAME, ctx.metrics, self.options.cache_size)
        # HubSpot's answer says expires_in (30 minutes); the default is never needed.
        self.tokens = TokenSource(NAME, ctx.metrics, default_lifetime_s=1800.0)
        # HubSpot's day resets at the account's midnight: probe at each full UTC hour.
        retry_s = self.options.daily_retry_s
        self.budget = DailyBudget(NAME, ctx.metrics, probe=lambda: daily_wait(retry_s))

    async def setup(self) -> None:
        if self._session is None:
            self._session = new_session(
                self.settings.destination_ca_file, self.settings.destination_timeout_s
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def limits_for(self, account: str) -> TokenLimits:
        """One set of rate windows per account (credentials file), whatever its token."""
        return self._limits.setdefault(account, lambda: TokenLimits(self.options))

    def _truncated(self, field: str) -> None:
        self.metrics.truncations.labels(NAME, field).inc()

    async def write(self, batch: Batch) -> list[Outcome]:
        """Only DeliveryErrors leave: an answer no parser foresaw is `bad_response`."""
        outcomes = await contained(NAME, self._write(batch))
        one_per_item(NAME, outcomes, len(batch.items))
        return outcomes

    async def _write(self, batch: Batch) -> list[Outcome]:
        await self.setup()
        assert self._session is not None
        creds = Credentials.parse(batch.credentials, account_of(batch.config))
        limits = self.limits_for(creds.account)
        limits.handoff(self._handoffs, batch.config.org_id)
        limits.check_daily()  # spent for today: no request at all
        self.budget.configure(creds.account, batch.config.max_daily_api_share)
        self.budget.check(creds.account)  # this service's share is spent: no request at all
        client = HubSpotClient(self._session, creds, limits, self.metrics, self.tokens, self.budget)
        org = batch.config.org_id
        rnd = Round(client, org, self.cache, self.options.search_page_size)
        writes = [
            w
            for n, item in enumerate(batch.items)
            for w in plan_item(batch.config, item.event, n, self._truncated)
        ]
        self._learn_crm_ids(org, writes)
        states = [ItemState() for _ in batch.items]
        gone = await self._round(rnd, writes, states)
        if gone:  # crm ids (or cached ids) of records deleted or merged: match by field
            await self._round(rnd, [fall_back(w) for w in gone], states)
        return [s.outcome() for s in states]

    def _learn_crm_ids(self, org: str, writes: list[Write]) -> None:
        """A target's crm id names the lead's own record (not a shared propensity company)."""
        for w in writes:
            if w.record_id and w.fallback is not None and not w.propensity:
                self.cache.put(lookup_key(org, w.fallback), w.record_id)

    async def _round(self, rnd: Round, writes: list[Write], states: list[ItemState]) -> list[Write]:
        """Resolve, merge and send `writes`, folding results into `states`; returns the
        writes whose record (named by id) HubSpot no longer has."""
        now: Current = {}
        await resolve(rnd, writes, now)
        if any(w.guarded for w in writes):  # write: if_empty
            await read_current(rnd.client, writes, now, self.metrics)
            keep(writes, now)
        for w in writes:
            if w.error is not None:
                states[w.item].errors.append(w.error)
            elif record_key(w) is None and w.propensity:
                self.metrics.propensity_unmatched.labels(NAME).inc()
            elif record_key(w) is None:
                states[w.item].not_found = True
            elif w.kept and not w.propensity:
                states[w.item].kept = True
        records = merge([w for w in writes if w.error is None and not w.kept])
        results = await writer.send(rnd.client, records, self.options.inputs_per_request)
        gone: list[Write] = []
        for n, rec in enumerate(records):
            result = results[str(n)]
            if moved(rec, result):
                for w in rec.writes:
                    if w.lookup is not None and w.found_id:
                        self.cache.drop(lookup_key(rnd.org, w.lookup))
                    if w.fallback is not None:
                        self.cache.drop(lookup_key(rnd.org, w.fallback))
                gone += rec.writes
                continue
            fold(rec, result, states)
            if rec.mode == "create" and isinstance(result, Done):
                for w in rec.writes:
                    if w.lookup is not None:
                        self.cache.put(lookup_key(rnd.org, w.lookup), result.id)
        return gone

    async def _reader(self, config: DestinationConfig, data: Mapping[str, Any]) -> Credentials:
        await self.setup()
        return Credentials.parse(data, account_of(config))

    async def lookup(
        self, config: DestinationConfig, credentials: Mapping[str, Any], query: RecordQuery
    ) -> Found:
        creds = await self._reader(config, credentials)
        assert self._session is not None
        limits = self.limits_for(creds.account)  # no budget: a read spends no write's share
        client = HubSpotClient(self._session, creds, limits, self.metrics, self.tokens)
        return await contained(NAME, lookup.find(client, query))

    async def describe(
        self, config: DestinationConfig, credentials: Mapping[str, Any], objects: Collection[str]
    ) -> dict[str, Any]:
        creds = await self._reader(config, credentials)
        assert self._session is not None
        return await lookup.describe(self._session, creds, objects)
