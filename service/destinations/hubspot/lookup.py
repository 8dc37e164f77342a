"""Read-only HubSpot calls: finding records that have no crm id and no unique
idProperty (a company's domain is not unique) with `POST /crm/v3/objects/{object}/
search` and an IN filter; and, for the `Destination` protocol, `find` (the
preview's lookup of one record) and `describe` (check-config's properties).

Search is eventually consistent: a company created a moment ago may not be
found yet, and re-evaluated leads would search again every time, so the ids of
records found and created are kept in the record cache (service/destinations/cache.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from service.destinations.answers import unreadable
from service.destinations.base import Found, RecordQuery
from service.destinations.cache import CacheKey, RecordCache, cache_key
from service.destinations.http import error_for_status
from service.destinations.hubspot.client import Credentials, HubSpotClient, gather_all
from service.destinations.hubspot.errors import message_of
from service.destinations.hubspot.plan import NAME, Current, Lookup, Write
from service.destinations.schema import Reader
from service.errors import DeliveryError, RateLimited, TransientError

IN_VALUES = 100  # values per IN filter; one search request per 100 lookups
MAX_PAGES = 50  # HubSpot stops paging at 10,000 results (50 pages of 200)


@dataclass(frozen=True)
class Round:
    """One round of one batch: whose account asks (client), which org's record cache
    it reads and fills, and how many results a search page holds."""

    client: HubSpotClient
    org: str
    cache: RecordCache
    page_size: int


def search_body(
    prop: str, values: Sequence[str], limit: int, after: str | None, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """IN compares exactly and wants string values in lower case. `extra`: more properties
    to return (the current values `write: if_empty` needs, read in the same search)."""
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": prop, "operator": "IN", "values": list(values)}]}
        ],
        "properties": list(dict.fromkeys([prop, *extra])),
        "limit": limit,
    }
    if after:
        body["after"] = after
    return body


def pick(
    found: dict[str, str], results: Any, prop: str, props: dict[str, Any] | None = None
) -> tuple[str | None, int]:
    """Fold one page into value -> lowest (oldest) id, and `props` (id -> properties);
    (the next page's cursor, the page's count). A page that cannot be read raises
    `bad_response`: never "no record"."""
    body = results if isinstance(results, dict) else {}
    page = body.get("results")
    if not isinstance(page, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"] for r in page
    ):
        raise unreadable(NAME, "a search without results with ids")
    for rec in page:  # matched `prop IN (...)`: the value is one we sent
        value = rec.get("properties")
        value = value.get(prop) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            raise unreadable(NAME, f"a search result without its {prop}")
        value, rid = value.lower(), rec["id"]
        if props is not None:
            props[rid] = rec["properties"]
        if value not in found or (len(rid), rid) < (len(found[value]), found[value]):
            found[value] = rid
    paging = body.get("paging")
    after = paging.get("next") if isinstance(paging, dict) else None
    after = after.get("after") if isinstance(after, dict) else None
    if after is not None and not isinstance(after, str | int):
        raise unreadable(NAME, "a search with a paging cursor that is not one")
    return (str(after) if after not in (None, "") else None), len(page)


async def find_ids(
    client: HubSpotClient,
    obj: str,
    prop: str,
    values: Sequence[str],
    page_size: int,
    extra: Sequence[str] = (),
    props: dict[str, Any] | None = None,
) -> dict[str, str | DeliveryError]:
    """Lower-cased value -> record id, or the error that kept us from knowing; the
    `extra` properties of each record found go into `props` (id -> properties)."""
    path = f"/crm/v3/objects/{obj}/search"

    async def one(chunk: Sequence[str]) -> dict[str, str | DeliveryError]:
        found: dict[str, str] = {}
        after: str | None = None
        cursors: set[str] = set()
        listed = 0
        for _ in range(MAX_PAGES):
            try:
                resp = await client.post(
                    path, search_body(prop, chunk, page_size, after, extra), search=True
                )
            except RateLimited:
                raise
            except TransientError as exc:
                return dict.fromkeys(chunk, exc)
            if not resp.ok:
                text = message_of(resp.body, f"HubSpot search answered HTTP {resp.status}")
                return dict.fromkeys(chunk, error_for_status(resp.status, text))
            try:
                after, count = pick(found, resp.body, prop, props)
                listed += count
                total = resp.body.get("total", listed)
                if after is None and total != listed:
                    raise unreadable(NAME, "a search that listed fewer results than its total")
                if after in cursors:
                    raise unreadable(NAME, "a search that pages back to a page it gave before")
            except TransientError as exc:
                return dict.fromkeys(chunk, exc)
            if after is None:
                return dict(found)
            cursors.add(after)
        # More pages than HubSpot serves (10,000 results): the rest is unknown, not absent.
        return dict.fromkeys(chunk, unreadable(NAME, f"a search of more than {MAX_PAGES} pages"))

    unique = sorted({v.lower() for v in values})
    chunks = [unique[i : i + IN_VALUES] for i in range(0, len(unique), IN_VALUES)]
    out: dict[str, str | DeliveryError] = {}
    for part in await gather_all(one(c) for c in chunks):
        out.update(part)
    return out


def lookup_key(org: str, lookup: Lookup) -> CacheKey:
    """The property is part of the value: two match fields never share an entry."""
    return cache_key(org, NAME, lookup.object, f"{lookup.prop}\0{lookup.value}")


async def resolve(rnd: Round, writes: Sequence[Write], current: Current | None = None) -> None:
    """Fill `found_id` (or `error`) of writes that need a search to find their record;
    the search also returns the if_empty properties, kept in `current`."""
    wanted: dict[tuple[str, str], list[Write]] = defaultdict(list)
    for w in writes:
        if w.record_id is None and w.lookup is not None and not w.lookup.by_email:
            lk = w.lookup
            w.found_id = rnd.cache.get(lookup_key(rnd.org, lk))
            if w.found_id is None:
                wanted[(lk.object, lk.prop)].append(w)
    groups = list(wanted.items())
    extras = [sorted(frozenset[str]().union(*(w.guarded for w in ws))) for _, ws in groups]
    values = [[w.lookup.value for w in ws if w.lookup] for _, ws in groups]
    props: list[dict[str, Any]] = [{} for _ in groups]
    answers = await gather_all(
        find_ids(rnd.client, obj, prop, vs, rnd.page_size, extra, held)
        for ((obj, prop), _), vs, extra, held in zip(groups, values, extras, props, strict=True)
    )
    for ((obj, _), ws), found, held in zip(groups, answers, props, strict=True):
        for w in ws:
            hit = found.get(w.lookup.value.lower()) if w.lookup else None
            if isinstance(hit, DeliveryError):
                w.error = hit
            else:
                w.found_id = hit
                if hit is not None and w.lookup is not None:
                    rnd.cache.put(lookup_key(rnd.org, w.lookup), hit)
                if hit is not None and w.guarded and current is not None:
                    current[obj, "id", hit] = held.get(hit, {})


async def find(client: HubSpotClient, query: RecordQuery) -> Found:
    """The preview's lookup: the id of the record `query` names now. A contact by email
    and a record by id are read with batch/read; anything else is a search."""
    obj, by_email = query.object, query.object == "contacts" and query.field == "email"
    if query.id is None and not by_email:
        assert query.field is not None and query.value is not None
        found = await find_ids(client, obj, query.field, [query.value], 200)
        hit = found.get(query.value.lower())
        if isinstance(hit, DeliveryError):
            raise hit
        return [hit] if hit else []
    body: dict[str, Any] = {"inputs": [{"id": query.id or query.value}]}
    if query.id is None:
        body["idProperty"] = "email"
    resp = await client.post(f"/crm/v3/objects/{obj}/batch/read", body)
    results = resp.body.get("results") if isinstance(resp.body, dict) else None
    return [str(r["id"]) for r in results or [] if isinstance(r, dict) and "id" in r]


async def describe(
    session: aiohttp.ClientSession, creds: Credentials, objects: Collection[str]
) -> dict[str, Any]:
    """check-config: `GET /crm/v3/properties/{object}` of each object (None: no such)."""
    reader = Reader(session, NAME, creds.access_token, creds.refresh, 1800.0)
    out: dict[str, Any] = {}
    for obj in sorted(objects):
        out[obj] = await reader.get(f"{creds.base_url}/crm/v3/properties/{obj}", missing_ok=True)
    return out
