"""`GET /crm/v3/properties/{objectType}[/{propertyName}]`: the account's property
definitions (CRM Properties API v3), read-only; hubspot-api-client's
`crm.properties.core_api.get_all` / `get_by_name` read them unchanged."""

from __future__ import annotations

from aiohttp import web

from devkit.sandboxes.hubspot.properties import SYSTEM, HsProperty, definition, object_type
from devkit.sandboxes.hubspot.store import Store, error_body
from devkit.sandboxes.hubspot.wire import reply


def all_definitions(store: Store, obj: str) -> list[dict[str, object]]:
    declared = store.defs[obj]
    out = [
        definition(obj, name, declared.get(name) or HsProperty(kind))
        for name, kind in store.schema[obj].items()
    ]
    out += [
        definition(obj, name, HsProperty(kind, read_only=True, hubspot_defined=True))
        for name, kind in SYSTEM.items()
    ]
    return out


def property_routes(store: Store) -> list[web.RouteDef]:
    def unknown(raw: str) -> web.Response:
        return reply(
            400, error_body(f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")
        )

    async def get_all(request: web.Request) -> web.Response:
        raw = request.match_info["obj"]
        obj = object_type(raw)
        if obj is None:
            return unknown(raw)
        return reply(200, {"results": all_definitions(store, obj)})

    async def get_one(request: web.Request) -> web.Response:
        raw, name = request.match_info["obj"], request.match_info["name"]
        obj = object_type(raw)
        if obj is None:
            return unknown(raw)
        found = [d for d in all_definitions(store, obj) if d["name"] == name]
        if not found:
            message = f"Unable to find property {name} for object type {raw}"
            return reply(404, error_body(message, "OBJECT_NOT_FOUND"))
        return reply(200, found[0])

    base = "/crm/v3/properties/{obj}"
    return [web.get(base, get_all), web.get(base + "/{name}", get_one)]
