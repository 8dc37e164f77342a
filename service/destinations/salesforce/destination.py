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

from service.destinations.base import Batch, Outcome
from service.destinations.salesforce import plan as planning
from service.destinations.salesforce.client import (
    COLLECTION_LIMIT,
    NAME,
    Credentials,
    RestClient,
    is_batch_error,
)
from service.destinations.salesforce.mapping import DEFAULT_TEXT_LIMIT
from service.destinations.salesforce.outcomes import Result, check_names, fold, saved
from service.destinations.salesforce.soql import DEFAULT_URI_BUDGET, in_queries
from service.errors import DeliveryError
from service.http import new_session
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
        self._session: aiohttp.ClientSession | None = None
        self._client: RestClient | None = None

    async def setup(self) -> None:
        if self._session is None:
            s = self.settings
            self._session = new_session(s.destination_ca_file, s.destination_timeout_s)
            self._client = RestClient(
                self._session,
                self.metrics,
                quota_retry_s=self.quota_retry_s,
                limit_retry_s=self.limit_retry_s,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = self._client = None

    async def write(self, batch: Batch) -> list[Outcome]:
        await self.setup()
        assert self._client is not None
        creds = Credentials.parse(batch.credentials)
        check_names(batch.config)
        events = [item.event for item in batch.items]
        lookups = await self._lookups(self._client, creds, batch.config, events)
        truncations = self.metrics.truncations
        plan = planning.build(
            batch.config, events, lookups,
            default_limit=self.default_text_limit,
            on_truncate=lambda key: truncations.labels(NAME, key).inc(),
        )  # fmt: skip
        if plan.propensity_misses:
            self.metrics.propensity_unmatched.labels(NAME).inc(plan.propensity_misses)
        results = await self._execute(self._client, creds, plan)
        return fold(plan, results)

    async def _gather(self, calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        return await asyncio.gather(*(bounded(c) for c in calls), return_exceptions=True)

    async def _lookups(
        self, client: RestClient, creds: Credentials, config: DestinationConfig, events: list[Any]
    ) -> planning.Lookups:
        """One IN query per (object, field); nothing is written yet, so failures raise."""
        keys: list[planning.LookupKey] = []
        calls = []
        for (obj, field), values in planning.needed_lookups(config, events).items():
            for soql in in_queries(obj, field, values, budget=self.uri_budget):
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
                for record in answer:
                    value, rid = record.get(key[1]), record.get("Id")
                    if isinstance(value, str) and isinstance(rid, str):
                        index.setdefault(value.casefold(), []).append(rid)
        return found

    async def _execute(
        self, client: RestClient, creds: Credentials, plan: planning.Plan
    ) -> list[Result]:
        """Every planned write's result; a request's failure is its records' failure."""
        chunks = list(planning.requests(plan, self.collection_size))
        calls = [
            client.collection(creds, method, [plan.writes[i].body() for i in idx])
            for method, idx in chunks
        ]
        results: list[Result | None] = [None] * len(plan.writes)
        for (_method, idx), answer in zip(chunks, await self._gather(calls), strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, DeliveryError):
                raise answer
            for n, i in enumerate(idx):
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
