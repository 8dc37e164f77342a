"""Requests the sandboxes answered, by destination and kind, between two cursors.

Kinds: `lookup` (Salesforce SOQL query or GET, HubSpot batch/read or GET, Airtable
list calls), `search` (HubSpot search), `write` (Salesforce composite/sobjects,
HubSpot batch create/update/upsert, Airtable POST/PATCH/PUT) and `token` (OAuth
grants). The sandboxes log every call (devkit/sandboxes), so nothing is sampled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from devkit.fleet import Fleet

KINDS = ("lookup", "search", "write", "token")


@dataclass(frozen=True)
class Cursor:
    salesforce: int
    hubspot: int
    airtable: int
    sf_tokens: int
    hs_tokens: int


def salesforce_kind(method: str, path: str) -> str:
    if "/composite/sobjects" in path or (method in ("POST", "PATCH") and "/sobjects/" in path):
        return "write"
    return "lookup"


def hubspot_kind(method: str, path: str) -> str:
    if path.endswith("/search"):
        return "search"
    if path.endswith("/batch/read") or method == "GET":
        return "lookup"
    return "write"


def airtable_kind(method: str, path: str) -> str:
    if method == "GET" or path.endswith("/listRecords"):
        return "lookup"
    return "write"


def cursor(f: Fleet) -> Cursor:
    return Cursor(
        len(f.sf.calls),
        len(f.hs.calls),
        len(f.at.hits),
        f.sf.oauth.grants + f.sf.oauth.refused,
        f.hs.oauth.grants + f.hs.oauth.refused,
    )


def tally(f: Fleet, since: Cursor) -> Counter[tuple[str, str]]:
    """(destination, kind) -> requests since the cursor; plus (destination, "429")."""
    out: Counter[tuple[str, str]] = Counter()
    for c in f.sf.calls[since.salesforce :]:
        out["salesforce", salesforce_kind(c.method, c.path)] += 1
    for k in f.hs.calls[since.hubspot :]:
        out["hubspot", "429" if k.status == 429 else hubspot_kind(k.method, k.path)] += 1
    for h in f.at.hits[since.airtable :]:
        out["airtable", "429" if h.status == 429 else airtable_kind(h.method, h.path)] += 1
    now = cursor(f)
    out["salesforce", "token"] += now.sf_tokens - since.sf_tokens
    out["hubspot", "token"] += now.hs_tokens - since.hs_tokens
    return out


def per_record(counts: Counter[tuple[str, str]], delivered: dict[str, int]) -> dict[str, float]:
    """ "destination kind" -> requests per delivered record of that destination."""
    return {
        f"{d} {k}": counts[d, k] / delivered[d] for d in delivered if delivered[d] for k in KINDS
    }
