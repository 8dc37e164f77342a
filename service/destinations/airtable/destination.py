"""`AirtableDestination`: the `Destination` protocol for Airtable (contract §4-§6).

Per batch (one org, one base): every target table is written in turn and each
item's results are combined into one `Outcome`. Whole-batch problems (auth,
permission, rate-limit penalty, outage) are raised. One pacer per base keeps
requests under Airtable's 5 per second; a 429 blocks that base alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import aiohttp
from pyairtable import Api

from service.destinations.airtable import lookup
from service.destinations.airtable.client import AirtableClient, Credentials, RecordsApi
from service.destinations.airtable.options import AirtableOptions
from service.destinations.airtable.outcomes import ItemResult, combine
from service.destinations.airtable.plan import DESTINATION
from service.destinations.airtable.sdk_client import SdkClient, sdk_api
from service.destinations.airtable.writer import TargetWriter
from service.destinations.answers import contained, one_per_item
from service.destinations.base import Batch, DestinationContext, Found, Outcome, RecordQuery
from service.destinations.cache import RecordCache
from service.destinations.http import new_session
from service.errors import AuthFailed, DeliveryError, Forbidden, RateLimited
from service.models import DestinationConfig
from service.ratelimit import WindowPool


def _most_telling(group: BaseExceptionGroup[Any]) -> BaseException:
    """One error for the batch from concurrent chunks: auth > permission > rate limit > other."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if not all(isinstance(e, DeliveryError) for e in leaves):
        return group
    for kind in (AuthFailed, Forbidden, RateLimited):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0]


class AirtableDestination:
    name = DESTINATION

    def __init__(self, ctx: DestinationContext, options: AirtableOptions | None = None) -> None:
        self.options = options or AirtableOptions.from_mapping(ctx.options.get(DESTINATION))
        self.max_batch_size = self.options.max_batch_size
        self._settings, self._metrics = ctx.settings, ctx.metrics
        self._pacers = WindowPool(self.options.requests_per_second, self.options.window_s)
        self._handoffs = ctx.handoffs
        self._session: aiohttp.ClientSession | None = None
        self._sdk: dict[str, tuple[Credentials, Api]] = {}  # base id -> its key's client
        self.cache = RecordCache(DESTINATION, ctx.metrics, self.options.cache_size)

    async def setup(self) -> None:
        if self._session is None:
            self._session = new_session(
                self._settings.destination_ca_file, self._settings.destination_timeout_s
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        for _, api in self._sdk.values():
            api.session.close()
        self._sdk.clear()

    def _client(self, secret: Credentials, org_id: str) -> RecordsApi:
        pacer = self._pacers.get(secret.base_id)
        if (wait := self._handoffs.wait_s(org_id, pacer.window_s)) > 0:
            pacer.hold(wait)  # the base's previous owner (another instance) may have spent it
        penalty = self.options.penalty_s
        if self.options.client == "sdk":
            held = self._sdk.get(secret.base_id)
            if held is None or held[0] != secret:  # a rotated key replaces the base's client
                if held is not None:
                    held[1].session.close()
                ca, timeout = (
                    self._settings.destination_ca_file,
                    self._settings.destination_timeout_s,
                )
                held = self._sdk[secret.base_id] = (secret, sdk_api(secret, ca, timeout))
            return SdkClient(held[1], pacer, self._metrics, secret.base_id, penalty)
        assert self._session is not None, "setup() must run before write()"
        return AirtableClient(self._session, pacer, self._metrics, secret, penalty)

    def _count_truncation(self, key: str) -> None:
        self._metrics.truncations.labels(DESTINATION, key).inc()

    async def write(self, batch: Batch) -> list[Outcome]:
        """Only DeliveryErrors leave: an answer no parser foresaw is `bad_response`."""
        outcomes = await contained(DESTINATION, self._write(batch))
        one_per_item(DESTINATION, outcomes, len(batch.items))
        return outcomes

    async def _write(self, batch: Batch) -> list[Outcome]:
        client = self._client(Credentials.parse(batch.credentials), batch.config.org_id)
        events = [item.event for item in batch.items]
        per_item: list[list[ItemResult]] = [[] for _ in events]
        for target in batch.config.targets:  # propensity: never on Airtable (config validation)
            writer = TargetWriter(
                client, target, len(events), self.cache, batch.config.org_id, self._metrics
            )
            try:
                await writer.run(events, self._count_truncation)
            except BaseExceptionGroup as group:
                raise _most_telling(group) from None
            for results, result in zip(per_item, writer.results, strict=True):
                results.append(result)
        return [combine(results) for results in per_item]

    async def lookup(
        self, config: DestinationConfig, credentials: Mapping[str, Any], query: RecordQuery
    ) -> Found:
        """Through the aiohttp client whatever `client` says: a read needs no SDK."""
        await self.setup()
        assert self._session is not None
        creds = Credentials.parse(credentials)
        pacer = self._pacers.get(creds.base_id)
        client = AirtableClient(self._session, pacer, self._metrics, creds, self.options.penalty_s)
        return await contained(DESTINATION, lookup.find(client, query))

    async def describe(
        self, config: DestinationConfig, credentials: Mapping[str, Any], objects: Collection[str]
    ) -> dict[str, Any]:
        await self.setup()
        assert self._session is not None
        return await lookup.describe(self._session, Credentials.parse(credentials), objects)
