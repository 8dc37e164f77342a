"""Malformed CRM answers (contract §6: "an answer that cannot be read is never
'no record'"), for any sandbox: `sandbox.garble("short", path="/query")` makes
the next matching 2xx answer lose its last result. Kinds:

- `invalid_json`: the body cut in half;
- `short`: the result list (top level, `records` or `results`) one item short;
- `no_ids`: every result without its `id` / `Id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

KINDS = ("invalid_json", "short", "no_ids")


@dataclass
class Garble:
    kind: str
    path: str
    times: int = 1
    method: str | None = None


def garbled(body: bytes, kind: str) -> bytes:
    if kind == "invalid_json":
        return body[: len(body) // 2] or b"{"
    data: Any = orjson.loads(body)
    items = data if isinstance(data, list) else data.get("records", data.get("results"))
    if kind == "short" and items:
        items.pop()
    elif kind == "no_ids":
        for item in items or []:
            item.pop("id", None)
            item.pop("Id", None)
    return orjson.dumps(data)


class Garbler:
    """Mixed into HttpsSandbox: its middleware mangles answers while garbles are pending."""

    garbles: list[Garble]

    def garble(self, kind: str, *, path: str, times: int = 1, method: str | None = None) -> None:
        assert kind in KINDS, kind
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
