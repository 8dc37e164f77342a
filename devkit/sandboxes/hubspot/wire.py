"""HTTP helpers shared by the sandbox's routes: JSON answers and request checks."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from devkit.sandboxes.hubspot.store import OBJECTS, error_body


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(
        status=status, body=orjson.dumps(body), headers=headers, content_type="application/json"
    )


def refuse(message: str, category: str = "VALIDATION_ERROR") -> web.HTTPBadRequest:
    body = orjson.dumps(error_body(message, category))
    return web.HTTPBadRequest(body=body, content_type="application/json")


async def read_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise refuse(f"Invalid input JSON: {exc}") from None


def object_of(request: web.Request) -> str:
    obj = request.match_info["obj"]
    if obj not in OBJECTS:
        raise refuse(f"Unable to infer object type from: {obj}")
    return obj
