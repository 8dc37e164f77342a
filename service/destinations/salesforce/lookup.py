"""Read-only Salesforce calls: nothing here writes.

For a write: one SOQL `IN` query per (object, match field) for the whole batch
(selecting the object's `if_empty` fields too), and the Contacts of converted
Leads. For the `Destination` protocol: `find` (the preview's lookup of one
record) and `describe` (check-config's sObject describe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from service.destinations.answers import unreadable
from service.destinations.base import Found, RecordQuery
from service.destinations.mapping import lead_value
from service.destinations.salesforce import current
from service.destinations.salesforce.client import Credentials, RestClient, is_batch_error
from service.destinations.salesforce.options import SalesforceOptions
from service.destinations.salesforce.pages import field_value
from service.destinations.salesforce.plan import NAME, LookupKey, Lookups, View, known_id, pairs
from service.destinations.salesforce.soql import OPEN_ONLY, in_queries
from service.destinations.schema import Reader
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted

T = TypeVar("T")


@dataclass(frozen=True)
class Round:
    """One round of one batch: who asks (client, creds), for what (config, events, views)."""

    client: RestClient
    creds: Credentials
    config: DestinationConfig
    events: Sequence[EvaluationCompleted]
    views: Sequence[View | None]
    options: SalesforceOptions

    def again(self, picked: Sequence[int], views: Sequence[View | None]) -> Round:
        """A later round for the items `picked`, knowing what `views` say."""
        return replace(self, events=[self.events[n] for n in picked], views=views)

    async def gather(self, calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
        """At most `concurrency` calls in flight; every answer or error, in order."""
        gate = asyncio.Semaphore(self.options.concurrency)

        async def bounded(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        return await asyncio.gather(*(bounded(c) for c in calls), return_exceptions=True)

    async def queries(self, soql: Sequence[str]) -> list[list[dict[str, Any]] | BaseException]:
        return await self.gather([self.client.query(self.creds, q) for q in soql])


def needed(
    config: DestinationConfig,
    events: Sequence[EvaluationCompleted],
    views: Sequence[View | None] | None = None,
) -> dict[LookupKey, list[str]]:
    """(object, field) -> the values to look up, for one batched query each: the items
    that name no record of that object (crm_ids, the cache) and have a match value."""
    wanted: dict[LookupKey, dict[str, None]] = {}
    for n, event in enumerate(events):
        view = views[n] if views is not None else None
        for obj, match in pairs(config, event):
            if match is None or (view is not None and not view.wants(obj)):
                continue
            value = None if known_id(event, view, obj) else lead_value(event, match.event_field)
            if value is not None:
                wanted.setdefault((obj, match.crm_field), {})[value] = None
    return {key: list(values) for key, values in wanted.items()}


async def by_field(rnd: Round, guarded: dict[str, frozenset[str]], now: current.Current) -> Lookups:
    """One IN query per (object, field), selecting the object's if_empty fields too (into
    `now`). Nothing is written yet, so failures raise; a refused query (INVALID_FIELD)
    fails only the items that needed it."""
    keys: list[LookupKey] = []
    soql: list[str] = []
    budget = rnd.options.uri_budget
    for (obj, field), values in needed(rnd.config, rnd.events, rnd.views).items():
        where = OPEN_ONLY.get(obj)  # never a converted Lead
        also = sorted(guarded.get(obj, ()))
        for query in in_queries(obj, field, values, budget=budget, where=where, also=also):
            keys.append((obj, field))
            soql.append(query)
    found: dict[LookupKey, dict[str, list[str]] | DeliveryError] = {}
    for key, answer in zip(keys, await rnd.queries(soql), strict=True):
        if isinstance(answer, DeliveryError) and (answer.retryable or is_batch_error(answer)):
            raise answer
        if isinstance(answer, DeliveryError):
            found[key] = answer
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


async def converted_contacts(rnd: Round, lead_ids: set[str]) -> dict[str, str]:
    """15-character Lead id -> the ConvertedContactId of that converted Lead."""
    out: dict[str, str] = {}
    budget = rnd.options.uri_budget
    soql = in_queries("Lead", "Id", sorted(lead_ids), budget=budget, also=["ConvertedContactId"])
    for answer in await rnd.queries(soql):
        if isinstance(answer, BaseException):
            raise answer
        for record in answer:  # every record has a string Id (pages.read_page)
            contact = field_value(record, "ConvertedContactId")
            if contact is not None and not isinstance(contact, str):
                raise unreadable(NAME, "a ConvertedContactId that is not an id")
            if contact:
                out[record["Id"][:15]] = contact
    return out


async def find(client: RestClient, creds: Credentials, query: RecordQuery) -> Found:
    """The preview's lookup: the ids of the records `query` names now (a Lead named by
    id that was converted: where it went)."""
    obj = query.object
    if query.id is not None:
        also = ["IsConverted", "ConvertedContactId"] if obj == "Lead" else []
        [soql] = in_queries(obj, "Id", [query.id], also=also)
        rows = await client.query(creds, soql)
        if rows and rows[0].get("IsConverted"):
            return {"converted": True, "ConvertedContactId": rows[0].get("ConvertedContactId")}
        return [str(r["Id"]) for r in rows]
    assert query.field is not None and query.value is not None
    found = in_queries(obj, query.field, [query.value], where=OPEN_ONLY.get(obj))
    return [str(r["Id"]) for q in found for r in await client.query(creds, q)]


async def describe(
    session: aiohttp.ClientSession, creds: Credentials, objects: Collection[str]
) -> dict[str, Any]:
    """check-config: `GET .../sobjects/{Object}/describe` of each object (None: no such)."""
    reader = Reader(session, NAME, creds.access_token, creds.refresh, 7200.0)
    out: dict[str, Any] = {}
    for obj in sorted(objects):
        url = f"{creds.data_url}/sobjects/{quote(obj, safe='')}/describe"
        out[obj] = await reader.get(url, missing_ok=True)
    return out
