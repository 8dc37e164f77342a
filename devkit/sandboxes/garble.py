"""Malformed CRM answers (contract §6: "an answer that cannot be read is never
'no record'"), for any sandbox: `sandbox.garble("short", path="/query")` makes
the next matching 2xx answer lose its last result. Kinds (KINDS: every answer
with a result list; MALFORMED: all of them):

- `invalid_json`: the body cut in half;
- `short`: the result list (top level, `records` or `results`) one item short;
- `no_ids`: every result without its `id` / `Id`;
- `null_body`: the body is JSON `null`;
- `null_errors`: Salesforce SaveResults become `{"success": false, "errors": null}`;
  an object answer loses its results and says `"errors": null`;
- `null_fields`: every result's `fields` (Airtable) / `properties` (HubSpot) is
  null, and a SOQL record's selected fields are null;
- `wrong_types`: `"errors": 1` (HubSpot), ids as numbers, `success: "yes"`,
  counts as text;
- `foreign_next`: a query page says `done: false` and sends the next page to
  another host (Salesforce `nextRecordsUrl`): the token must not follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

KINDS = ("invalid_json", "short", "no_ids")
MALFORMED = (*KINDS, "null_body", "null_errors", "null_fields", "wrong_types", "foreign_next")
FOREIGN_NEXT = "https://evil.invalid/services/data/v62.0/query/01gFOREIGN-2000"


@dataclass
class Garble:
    kind: str
    path: str
    times: int = 1
    method: str | None = None


def _items(data: Any) -> list[Any]:
    items = data if isinstance(data, list) else data.get("records", data.get("results"))
    return items if isinstance(items, list) else []


def _wrong_types(data: Any) -> None:
    if isinstance(data, dict):
        if "errors" in data or "results" in data:
            data["errors"] = 1
        for key in ("totalSize", "total"):
            if key in data:
                data[key] = "many"
    for item in _items(data):
        for key in ("id", "Id"):
            if key in item:
                item[key] = 12345
        if "success" in item:
            item["success"] = "yes"


def garbled(body: bytes, kind: str) -> bytes:
    if kind == "invalid_json":
        return body[: len(body) // 2] or b"{"
    if kind == "null_body":
        return b"null"
    data: Any = orjson.loads(body)
    items = _items(data)
    if kind == "short" and items:
        items.pop()
    elif kind == "no_ids":
        for item in items:
            item.pop("id", None)
            item.pop("Id", None)
    elif kind == "null_errors" and isinstance(data, list):
        for item in items:
            item.update(success=False, errors=None)
    elif kind == "null_errors":
        data.pop("results", None)
        data["errors"] = None
    elif kind == "null_fields":
        for item in items:
            for key in [k for k in item if k not in ("id", "Id", "attributes", "createdTime")]:
                item[key] = None
    elif kind == "wrong_types":
        _wrong_types(data)
    elif kind == "foreign_next" and isinstance(data, dict):
        data.update(done=False, nextRecordsUrl=FOREIGN_NEXT)
    return orjson.dumps(data)


class Garbler:
    """Mixed into HttpsSandbox: its middleware mangles answers while garbles are pending."""

    garbles: list[Garble]

    def garble(self, kind: str, *, path: str, times: int = 1, method: str | None = None) -> None:
        assert kind in MALFORMED, kind
        self.garbles.append(Garble(kind, path, times, method))

    @web.middleware
    async def _garble(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.Response) or not 200 <= response.status < 300:
            return response  # type: ignore[no-any-return]
        for g in self.garbles:
            matches = g.path in request.path and g.method in (None, request.method)
            if g.times > 0 and matches and response.body:
                g.times -= 1
                body = garbled(bytes(response.body), g.kind)  # type: ignore[arg-type]
                return web.Response(
                    body=body, status=response.status, content_type="application/json"
                )
        return response
