"""The Salesforce destination: batched lookups, then batched collection writes.

One `write` = one SOQL query per (object, match field) for the whole batch, then
`PATCH`/`POST /composite/sobjects` calls of up to 200 records with
`allOrNone=false`, whose per-record results become per-item outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import aiohttp

from service.destinations.answers import contained, one_per_item, unreadable
from service.destinations.base import Batch, Outcome, account_of
from service.destinations.cache import DEFAULT_MAX_ENTRIES, RecordCache
from service.destinations.http import new_session
from service.destinations.salesforce import current, known
from service.destinations.salesforce import plan as planning
from service.destinations.salesforce.client import (
    COLLECTION_LIMIT,
    NAME,
    Credentials,
    RestClient,
    is_batch_error,
)
from service.destinations.salesforce.mapping import DEFAULT_TEXT_LIMIT
from service.destinations.salesforce.outcomes import (
    ItemResult,
    Result,
    check_names,
    fold,
    saved,
)
from service.destinations.salesforce.pages import field_value
from service.destinations.salesforce.soql import DEFAULT_URI_BUDGET, OPEN_ONLY, in_queries
from service.errors import DeliveryError
from service.metrics import Metrics
from service.models import DestinationConfig, RecordRef
from service.settings import Settings

T = TypeVar("T")


class SalesforceDestination:
    name = NAME

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        max_batch_size: int = COLLECTION_LIMIT,
        collection_size: int = COLLECTION_LIMIT,
        default_text_limit: int = DEFAULT_TEXT_LIMIT,
        uri_budget: int = DEFAULT_URI_BUDGET,
        quota_retry_s: float = 300.0,
        limit_retry_s: float = 10.0,
        concurrency: int = 4,
        cache_size: int = DEFAULT_MAX_ENTRIES,
        token_lifetime_s: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.collection_size = min(collection_size, COLLECTION_LIMIT)
        self.default_text_limit = default_text_limit
        self.uri_budget = uri_budget
        self.quota_retry_s = quota_retry_s
        self.limit_retry_s = limit_retry_s
        self.concurrency = concurrency
        self.token_lifetime_s = token_lifetime_s
        self._session: aiohttp.ClientSession | None = None
        self._client: RestClient | None = None
        self.cache = RecordCache(NAME, metrics, cache_size)

    async def setup(self) -> None:
        if self._session is None:
            s = self.settings
            self._session = new_session(s.destination_ca_file, s.destination_timeout_s)
            self._client = RestClient(
                self._session,
                self.metrics,
                quota_retry_s=self.quota_retry_s,
                limit_retry_s=self.limit_retry_s,
                token_lifetime_s=self.token_lifetime_s,
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
        items = await self._round(self._client, creds, config, events, views)
        if any(item.moved for item in items):  # match by field again, in this delivery
            leads = known.converted_leads(items)
            contacts = await self._converted_contacts(self._client, creds, leads) if leads else {}
            again = known.second_round(config, events[0].org_id, items, contacts, self.cache)
            redo = [n for n, view in enumerate(again) if view is not None]
            second = await self._round(
                self._client, creds, config, [events[n] for n in redo], [again[n] for n in redo]
            )
            for n, item in zip(redo, second, strict=True):
                items[n].absorb(item)
        return [item.outcome() for item in items]

    async def _round(
        self,
        client: RestClient,
        creds: Credentials,
        config: DestinationConfig,
        events: list[Any],
        views: Sequence[planning.View | None],
    ) -> list[ItemResult]:
        now: current.Current = {}
        guarded = current.guarded(config)
        lookups = await self._lookups(client, creds, config, events, views, guarded, now)
        if wanted := current.known_reads(config, events, views):
            queries = current.id_queries(wanted, guarded, self.uri_budget)
            self.metrics.if_empty_reads.labels(NAME).inc(len(queries))
            answers = await self._gather([client.query(creds, q) for _, _, q in queries])
            current.read_answers(now, queries, answers, guarded)
        truncations = self.metrics.truncations
        plan = planning.build(
            config, events, lookups,
            default_limit=self.default_text_limit,
            on_truncate=lambda key: truncations.labels(NAME, key).inc(),
            views=views, current=now,
        )  # fmt: skip
        if plan.propensity_misses:
            self.metrics.propensity_unmatched.labels(NAME).inc(plan.propensity_misses)
        results = await self._execute(client, creds, plan)
        if events:
            known.learn(self.cache, events[0].org_id, plan, results)
        return fold(plan, results)

    async def _converted_contacts(
        self, client: RestClient, creds: Credentials, lead_ids: set[str]
    ) -> dict[str, str]:
        """15-character Lead id -> the ConvertedContactId of that converted Lead."""
        out: dict[str, str] = {}
        queries = in_queries(
            "Lead", "Id", sorted(lead_ids), budget=self.uri_budget, also=["ConvertedContactId"]
        )
        for answer in await self._gather([client.query(creds, q) for q in queries]):
            if isinstance(answer, BaseException):
                raise answer
            for record in answer:  # every record has a string Id (pages.read_page)
                contact = field_value(record, "ConvertedContactId")
                if contact is not None and not isinstance(contact, str):
                    raise unreadable(NAME, "a ConvertedContactId that is not an id")
                if contact:
                    out[record["Id"][:15]] = contact
        return out

    async def _gather(self, calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        return await asyncio.gather(*(bounded(c) for c in calls), return_exceptions=True)

    async def _lookups(
        self,
        client: RestClient,
        creds: Credentials,
        config: DestinationConfig,
        events: list[Any],
        views: Sequence[planning.View | None],
        guarded: dict[str, frozenset[str]],
        now: current.Current,
    ) -> planning.Lookups:
        """One IN query per (object, field), selecting the object's if_empty fields too;
        nothing is written yet, so failures raise."""
        keys: list[planning.LookupKey] = []
        calls = []
        for (obj, field), values in planning.needed_lookups(config, events, views).items():
            where = OPEN_ONLY.get(obj)  # never a converted Lead
            also = sorted(guarded.get(obj, ()))
            for soql in in_queries(
                obj, field, values, budget=self.uri_budget, where=where, also=also
            ):
                keys.append((obj, field))
                calls.append(client.query(creds, soql))
        found: dict[planning.LookupKey, dict[str, list[str]] | DeliveryError] = {}
        for key, answer in zip(keys, await self._gather(calls), strict=True):
            if isinstance(answer, DeliveryError) and (answer.retryable or is_batch_error(answer)):
                raise answer
            if isinstance(answer, DeliveryError):
                found[key] = answer  # e.g. INVALID_FIELD: fails the items that needed it
                continue
            if isinstance(answer, BaseException):
                raise answer
            index = found.setdefault(key, {})
            if isinstance(index, dict):
                for record in answer:  # matched `IN (...)`: the value is one we sent
                    value = field_value(record, key[1])
                    if not isinstance(value, str):
                        raise unreadable(NAME, f"a {key[0]} matched on {key[1]} without its value")
                    index.setdefault(value.casefold(), []).append(record["Id"])
                    if key[0] in guarded:
                        current.remember(now, key[0], record, guarded[key[0]])
        return found

    async def _execute(
        self, client: RestClient, creds: Credentials, plan: planning.Plan
    ) -> list[Result]:
        """Every planned write's result; a request's failure is its records' failure."""
        chunks = list(planning.requests(plan, self.collection_size))
        calls = [
            client.collection(
                creds, c.method, [plan.writes[i].body() for i in c.writes],
                auto_assign=c.assign, allow_save=c.allow_save,
            )
            for c in chunks
        ]  # fmt: skip
        results: list[Result | None] = [None] * len(plan.writes)
        for chunk, answer in zip(chunks, await self._gather(calls), strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, DeliveryError):
                raise answer
            for n, i in enumerate(chunk.writes):
                write = plan.writes[i]
                results[i] = (
                    answer if isinstance(answer, DeliveryError) else saved(write, answer[n])
                )
        done = [r for r in results if r is not None]
        if len(done) != len(plan.writes):  # fold() indexes results by write
            raise RuntimeError("a planned write was not sent")
        if not any(isinstance(r, RecordRef) for r in done):
            batch_wide = [r for r in done if isinstance(r, DeliveryError) and is_batch_error(r)]
            if batch_wide:  # the org refused everything: let the lane back off as one
                raise batch_wide[0]
        return done
