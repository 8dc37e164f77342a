"""What `write: if_empty` (contract §4a) needs from HubSpot: the current values of the
properties a target (or the propensity) writes only while they are empty.

A search already returns them (matching.py asks for them). A record no search
found (a crm id, the record cache, a contact written by email) is read with
`POST /crm/v3/objects/{object}/batch/read` (`properties`, and `idProperty: email`
for contacts by email), 100 a request: the extra read if_empty costs, counted in
`if_empty_reads_total`. An answer that cannot be read is `bad_response` for the
writes that needed it, never "empty" (that would overwrite what a rep typed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from service.destinations.answers import text_of, unreadable
from service.destinations.http import error_for_status
from service.destinations.hubspot.client import HubSpotClient, gather_all
from service.destinations.hubspot.errors import message_of
from service.destinations.hubspot.plan import NAME, Current, Write, record_key
from service.destinations.mapping import keep_filled
from service.errors import DeliveryError, RateLimited, TransientError
from service.metrics import Metrics

READ_INPUTS = 100


def parse_read(body: Any, keys: Sequence[str], by_email: bool) -> dict[str, Any]:
    """A batch read answer (200, or 207 with OBJECT_NOT_FOUND for records that are not
    there): key (id, or lower-case email) -> properties, None when not there, or
    `bad_response` when the answer does not say."""
    body = body if isinstance(body, dict) else {}
    out: dict[str, Any] = {}
    results, errors = body.get("results"), body.get("errors")
    for rec in results if isinstance(results, list) else []:
        props = rec.get("properties") if isinstance(rec, dict) else None
        if not isinstance(props, dict):
            continue
        rid = rec.get("id")  # v3 ids are strings; anything else is not one we asked for
        key = (
            text_of(props.get("email")).lower() if by_email else rid if isinstance(rid, str) else ""
        )
        if key in keys:
            out[key] = props
    for err in errors if isinstance(errors, list) else []:
        context = err.get("context") if isinstance(err, dict) else None
        ids = context.get("ids") if isinstance(context, dict) else None
        if (
            isinstance(err, dict)
            and err.get("category") == "OBJECT_NOT_FOUND"
            and isinstance(ids, list)
        ):
            for i in ids:
                out.setdefault(text_of(i).lower() if by_email else text_of(i), None)
    missing = unreadable(NAME, "a batch read without a result for a record it was asked")
    return {k: out.get(k, missing) for k in keys}


async def _read(
    client: HubSpotClient, obj: str, mode: str, keys: list[str], props: list[str]
) -> dict[str, Any]:
    by_email = mode == "email"
    body: dict[str, Any] = {"inputs": [{"id": k} for k in keys], "properties": props}
    if by_email:
        body["idProperty"] = "email"
        body["properties"] = sorted({*props, "email"})
    try:
        resp = await client.post(f"/crm/v3/objects/{obj}/batch/read", body)
    except RateLimited:
        raise
    except TransientError as exc:
        return dict.fromkeys(keys, exc)
    if resp.status not in (200, 207):
        text = message_of(resp.body, f"HubSpot batch read answered HTTP {resp.status}")
        return dict.fromkeys(keys, error_for_status(resp.status, text))
    return parse_read(resp.body, keys, by_email)


async def read_current(
    client: HubSpotClient, writes: Sequence[Write], current: Current, metrics: Metrics
) -> None:
    """Batch-read the if_empty properties of the records no search has read."""
    need: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for w in writes:
        key = record_key(w)
        unread = key is not None and key[1] != "create" and key not in current
        if w.guarded and w.error is None and key is not None and unread:
            need[key[0], key[1]][key[2]] |= w.guarded
    calls = []
    for (obj, mode), wanted in need.items():
        keys = sorted(wanted)
        props = sorted(set().union(*wanted.values()))
        for start in range(0, len(keys), READ_INPUTS):
            calls.append(
                (obj, mode, _read(client, obj, mode, keys[start : start + READ_INPUTS], props))
            )
    metrics.if_empty_reads.labels(NAME).inc(len(calls))
    answers = await gather_all(call for _, _, call in calls)
    for (obj, mode, _), found in zip(calls, answers, strict=True):
        for name, props in found.items():
            current[obj, mode, name] = props


def keep(writes: Sequence[Write], current: Current) -> None:
    """Take out of each write the if_empty properties its record already holds; a
    write left with nothing is `kept` (not sent). A failed read fails the write."""
    for w in writes:
        key = record_key(w)
        if not w.guarded or w.error is not None or key is None or key[1] == "create":
            continue
        now = current.get(key)
        if isinstance(now, DeliveryError):
            w.error = now
            continue
        w.properties = keep_filled(w.wanted, w.guarded, now)
        w.kept = not w.properties
