"""POST /crm/v3/objects/{object}/search: filterGroups (OR) of filters (AND).

Limits per HubSpot's changelog (Aug 2024): 5 filterGroups, 10 filters in a
group, 25 in all; `limit` up to 200; paging stops at 10,000 results. IN and
NOT_IN match string values exactly and want them in lower case.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any

from devkit.sandboxes.hubspot.store import Rec, Store, error_body

MAX_GROUPS, MAX_IN_GROUP, MAX_FILTERS = 5, 10, 25
MAX_LIMIT, MAX_RESULTS = 200, 10_000


def _match(rec: Rec, flt: dict[str, Any]) -> bool:
    name, op = str(flt.get("propertyName", "")), str(flt.get("operator", "EQ"))
    value = rec.json()["properties"].get(name)
    have = None if value in (None, "") else str(value)
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("IN", "NOT_IN"):
        values = [str(v) for v in flt.get("values") or []]
        hit = have is not None and have.lower() in values  # exact, lower-case values
        return hit if op == "IN" else not hit
    want = str(flt.get("value", "")).lower()
    if op == "EQ":
        return have is not None and have.lower() == want
    if op == "NEQ":
        return have is None or have.lower() != want
    if op == "CONTAINS_TOKEN":
        return have is not None and want in have.lower().split()
    raise ValueError(op)


def _sort_key(name: str) -> Callable[[Rec], str]:
    return lambda r: r.json()["properties"].get(name) or ""


def _check(body: dict[str, Any]) -> str | None:
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        return f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}"
    sizes = [len(g.get("filters") or []) for g in groups]
    if any(n > MAX_IN_GROUP for n in sizes) or sum(sizes) > MAX_FILTERS:
        return f"Too many filters; at most {MAX_IN_GROUP} a group and {MAX_FILTERS} in all"
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        return f"limit must be between 1 and {MAX_LIMIT}"
    return None


def search(store: Store, obj: str, body: Any, lag_s: float) -> tuple[int, dict[str, Any]]:
    body = body if isinstance(body, dict) else {}
    known = {*store.schema[obj], "hs_object_id", "createdate", "lastmodifieddate"}
    unknown = sorted(
        {
            str(f.get("propertyName"))
            for g in body.get("filterGroups") or []
            for f in g.get("filters") or []
        }
        - known
    )
    problem = _check(body) or (f"Unknown properties in filters: {unknown}" if unknown else None)
    if problem:
        return 400, error_body(problem, "VALIDATION_ERROR")
    visible = [r for r in store.records[obj].values() if monotonic() - r.born >= lag_s]
    groups = body.get("filterGroups") or [{"filters": []}]
    try:
        hits = [
            r
            for r in visible
            if any(all(_match(r, f) for f in g.get("filters") or []) for g in groups)
        ]
    except ValueError as exc:
        return 400, error_body(f"Unknown filter operator {exc}", "VALIDATION_ERROR")
    for sort in reversed(body.get("sorts") or []):
        if isinstance(sort, dict):
            hits.sort(
                key=_sort_key(str(sort.get("propertyName", ""))),
                reverse=sort.get("direction") == "DESCENDING",
            )
    if not body.get("sorts"):
        hits.sort(key=lambda r: int(r.id))
    start = int(body.get("after") or 0)
    if start >= MAX_RESULTS:
        return 400, error_body("Paging past 10,000 results is not allowed", "VALIDATION_ERROR")
    limit = int(body.get("limit", 10))
    props = [str(p) for p in body["properties"]] if body.get("properties") else None
    page = hits[start : start + limit]
    out: dict[str, Any] = {"total": len(hits), "results": [r.json(props) for r in page]}
    if start + limit < min(len(hits), MAX_RESULTS):
        out["paging"] = {"next": {"after": str(start + limit)}}
    return 200, out
