"""Single-object CRUD: /crm/v3/objects/{object}[/{id}] (create, list, read,
update, archive), with `idProperty` on read and update, as hubspot-api-client's
basic_api calls them.
"""

from __future__ import annotations

from aiohttp import web

from devkit.sandboxes.hubspot.store import Store, error_body, validation_error
from devkit.sandboxes.hubspot.wire import object_of, read_body, refuse, reply

LIST_MAX = 100


def object_routes(store: Store) -> list[web.RouteDef]:
    def not_found(key: str) -> web.Response:
        return reply(
            404,
            error_body(
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [key]},
            ),
        )

    def props_param(request: web.Request) -> list[str] | None:
        raw = request.query.get("properties")
        return [p for p in raw.split(",") if p] if raw else None

    async def create(request: web.Request) -> web.Response:
        obj = object_of(request)
        body = await read_body(request)
        props, issues = store.validate(
            obj, body.get("properties") if isinstance(body, dict) else {}
        )
        if issues:
            return reply(400, validation_error(issues))
        email = props.get("email")
        if obj == "contacts" and email and (prior := store.get(obj, email, "email")):
            return reply(
                409, error_body(f"Contact already exists. Existing ID: {prior.id}", "CONFLICT")
            )
        return reply(201, store.create(obj, props).json())

    async def listing(request: web.Request) -> web.Response:
        obj = object_of(request)
        try:
            limit, start = int(request.query.get("limit", 10)), int(request.query.get("after", 0))
        except ValueError:
            raise refuse("limit and after must be integers") from None
        if not 0 < limit <= LIST_MAX:
            raise refuse(f"limit must be between 1 and {LIST_MAX}")
        recs = sorted(store.records[obj].values(), key=lambda r: int(r.id))
        out: dict[str, object] = {
            "results": [r.json(props_param(request)) for r in recs[start : start + limit]]
        }
        if start + limit < len(recs):
            out["paging"] = {"next": {"after": str(start + limit)}}
        return reply(200, out)

    async def read(request: web.Request) -> web.Response:
        obj, key = object_of(request), request.match_info["id"]
        rec = store.get(obj, key, request.query.get("idProperty"), follow=True)
        return reply(200, rec.json(props_param(request))) if rec else not_found(key)

    async def update(request: web.Request) -> web.Response:
        obj, key = object_of(request), request.match_info["id"]
        rec = store.get(obj, key, request.query.get("idProperty"))
        if rec is None:
            return not_found(key)
        body = await read_body(request)
        props, issues = store.validate(
            obj, body.get("properties") if isinstance(body, dict) else {}
        )
        if issues:
            return reply(400, validation_error(issues))
        store.update(rec, props)
        return reply(200, rec.json())

    async def archive(request: web.Request) -> web.Response:
        obj, key = object_of(request), request.match_info["id"]
        store.remove(obj, key)  # HubSpot answers 204 even when it was gone
        return reply(204, None)

    base = "/crm/v3/objects/{obj}"
    return [
        web.post(base, create),
        web.get(base, listing),
        web.get(base + "/{id}", read),
        web.patch(base + "/{id}", update),
        web.delete(base + "/{id}", archive),
    ]
