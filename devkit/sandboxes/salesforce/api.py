"""The sandbox's REST resources: query, sObject rows, external-id upsert, collections."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from devkit.sandboxes.salesforce.duplicates import allow_save
from devkit.sandboxes.salesforce.schema import derived, describe_field
from devkit.sandboxes.salesforce.soql import SoqlError, parse
from devkit.sandboxes.salesforce.store import (
    EXTERNAL_IDS,
    PREFIX,
    READ_ONLY,
    SYSTEM,
    SfError,
    Store,
)

COLLECTION_LIMIT = 200
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",  # noqa: E501
    "fields": [],
}
NOT_FOUND = (404, "NOT_FOUND", "The requested resource does not exist")
N_RECORDS = web.RequestKey("n_records", int)
# (object, id, values sent) of each saved record
WRITTEN = web.RequestKey("written", list[tuple[str, str, dict[str, Any]]])


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    soql: str | None
    records: int  # records in a collection call
    auto_assign: str | None = None  # the Sforce-Auto-Assign header as sent
    duplicate_header: str | None = None  # Sforce-Duplicate-Rule-Header as sent


@dataclass
class Fault:
    status: int
    code: str
    message: str
    remaining: int | None
    until: float | None
    path: str | None


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise SfError(
            400, "JSON_PARSER_ERROR", "Unexpected character: was expecting JSON"
        ) from None


def _allow_save(request: web.Request) -> bool:
    return allow_save(request.headers.get("Sforce-Duplicate-Rule-Header"))


def _assigns(request: web.Request) -> bool:
    """Assignment rules run unless the request says `Sforce-Auto-Assign: FALSE`
    (the header defaults to TRUE; TRUE and FALSE are not case-sensitive)."""
    return request.headers.get("Sforce-Auto-Assign", "TRUE").upper() != "FALSE"


class Api:
    def __init__(self, store: Store, page_size: int) -> None:
        self.store = store
        self.page_size = page_size
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._locators = itertools.count(1)

    async def dispatch(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        if not re.fullmatch(r"v\d+\.\d", version):
            raise SfError(*NOT_FOUND)
        raw = request.rel_url.raw_path.split(f"/{version}/", 1)[1]
        parts = [unquote(p) for p in raw.split("/") if p]
        method = request.method
        if parts[:1] == ["query"] and method == "GET":
            return json(self.query(request.query.get("q", ""), version, parts[1:]))
        if parts == ["composite", "sobjects"] and method in ("POST", "PATCH"):
            return json(await self.collection(request, creating=method == "POST"))
        if parts[:1] == ["sobjects"] and len(parts) == 1:
            return json(
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [{"name": o} for o in self.store.fields],
                }
            )
        if parts[:1] == ["sobjects"] and len(parts) >= 2:
            return await self.sobject(request, version, parts[1], parts[2:])
        raise SfError(*NOT_FOUND)

    # --- query ---------------------------------------------------------------------
    def query(self, soql: str, version: str, locator: list[str]) -> dict[str, Any]:
        if locator:
            cursor = self._cursors.pop(locator[0], None)
            if cursor is None:
                raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            rows, total = cursor
            return self._page(rows, version, total)  # every page says the query's total
        try:
            query = parse(soql)
        except SoqlError as exc:
            raise SfError(400, exc.code, exc.message) from None
        known = self.store.object_fields(query.obj)
        for name in query.fields + [c.field for c in query.conditions]:
            if name not in known and name not in SYSTEM:
                message = f"No such column '{name}' on entity '{query.obj}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."  # noqa: E501
                raise SfError(400, "INVALID_FIELD", message)
        ids = query.select(self.store.records[query.obj], self.store.indexed)
        rows = [
            self.store.view(query.obj, rid, version, query.fields) for rid in ids[: query.limit]
        ]
        return self._page(rows, version, len(rows))

    def _page(self, rows: list[dict[str, Any]], version: str, total: int) -> dict[str, Any]:
        page, rest = rows[: self.page_size], rows[self.page_size :]
        answer: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            locator = f"01gSANDBOX{next(self._locators):08d}-{self.page_size}"
            self._cursors[locator] = (rest, total)
            answer["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}"
        return answer

    # --- sObject Collections ----------------------------------------------------------
    async def collection(self, request: web.Request, *, creating: bool) -> list[dict[str, Any]]:
        body = await _body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise SfError(400, "JSON_PARSER_ERROR", "records is required")
        request[N_RECORDS] = len(records)
        if len(records) > COLLECTION_LIMIT:
            raise SfError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        for rec in records:
            obj = (rec.get("attributes") or {}).get("type") if isinstance(rec, dict) else None
            if not obj:
                raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.")
            self.store.check_names(
                obj, {k: v for k, v in rec.items() if k != "attributes" and k.lower() != "id"}
            )
        before = copy.deepcopy(self.store.records) if body.get("allOrNone") else None
        assign, allow = _assigns(request), _allow_save(request)
        results: list[dict[str, Any]] = []
        for rec in records:
            obj = rec["attributes"]["type"]
            values = {k: v for k, v in rec.items() if k != "attributes"}
            try:
                if creating:
                    rid = self.store.create(obj, values, allow_save=allow)
                else:
                    rid = values.pop("id", None) or values.pop("Id", None)
                    if not rid:
                        raise SfError(
                            400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]
                        )
                    rid = self.store.update(obj, str(rid), values, allow_save=allow)
                if assign:
                    self.store.assign(obj, rid)
                results.append({"id": rid, "success": True, "errors": []})
                request.setdefault(WRITTEN, []).append((obj, rid, values))
            except SfError as exc:
                results.append({"success": False, "errors": [exc.save_error()]})
        if before is not None and not all(r["success"] for r in results):
            self.store.records = before
            request[WRITTEN] = []
            results = [
                r if not r["success"] else {"success": False, "errors": [ROLLED_BACK]}
                for r in results
            ]
        return results

    # --- sObject rows -------------------------------------------------------------------
    async def sobject(
        self, request: web.Request, version: str, obj: str, rest: list[str]
    ) -> web.Response:
        store, method = self.store, request.method
        fields = store.object_fields(obj)
        if not rest and method == "POST":
            values = await _body(request)
            store.check_names(obj, values)
            rid = store.create(obj, values, allow_save=_allow_save(request))
            if _assigns(request):
                store.assign(obj, rid)
            return json({"id": rid, "success": True, "errors": []}, 201)
        if rest == ["describe"] and method == "GET":
            return json(self.describe(obj, version, fields))
        if len(rest) == 1:
            return await self._row(request, version, obj, rest[0])
        if len(rest) == 2:
            return await self._upsert(request, version, obj, rest[0], rest[1])
        raise SfError(*NOT_FOUND)

    def describe(self, obj: str, version: str, fields: dict[str, int | None]) -> dict[str, Any]:
        """The sObject Describe answer: declared fields as declared, the rest derived."""
        declared = self.store.types.get(obj, {})
        described = [
            describe_field(
                name,
                declared.get(name) or derived(obj, name, length, name in READ_ONLY[obj]),
                external_id=name in EXTERNAL_IDS[obj],
            )
            for name, length in {**fields, **dict.fromkeys(SYSTEM)}.items()
        ]
        return {
            "name": obj,
            "label": obj,
            "custom": False,
            "keyPrefix": PREFIX[obj],
            "createable": True,
            "updateable": True,
            "queryable": True,
            "fields": described,
            "urls": {"sobject": f"/services/data/{version}/sobjects/{obj}",
                     "describe": f"/services/data/{version}/sobjects/{obj}/describe"},
        }  # fmt: skip

    async def _row(self, request: web.Request, version: str, obj: str, rid: str) -> web.Response:
        try:
            rid = self.store.resolve(obj, rid)
        except SfError as exc:
            if exc.code == "INVALID_CROSS_REFERENCE_KEY" or request.method == "GET":
                raise SfError(*NOT_FOUND) from None
            raise
        if request.method == "GET":
            return json(self.store.view(obj, rid, version))
        if request.method == "PATCH":
            values = await _body(request)
            self.store.check_names(obj, values)
            self.store.update(obj, rid, values, allow_save=_allow_save(request))
            if _assigns(request):
                self.store.assign(obj, rid)
            return web.Response(status=204)
        if request.method == "DELETE":
            self.store.records[obj].pop(rid)
            self.store.deleted.add(rid)
            return web.Response(status=204)
        raise SfError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH,DELETE",
        )

    async def _upsert(
        self, request: web.Request, version: str, obj: str, field: str, value: str
    ) -> web.Response:
        if field not in EXTERNAL_IDS[obj]:
            raise SfError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        found = self.store.find(obj, field, value)
        if len(found) > 1:
            return json([f"/services/data/{version}/sobjects/{obj}/{rid}" for rid in found], 300)
        if request.method == "GET":
            if not found:
                raise SfError(*NOT_FOUND)
            return json(self.store.view(obj, found[0], version))
        if request.method != "PATCH":
            raise SfError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH",
            )
        values = await _body(request)
        self.store.check_names(obj, values)
        allow = _allow_save(request)
        if found:
            rid = self.store.update(obj, found[0], values, allow_save=allow)
            return json({"id": rid, "success": True, "errors": [], "created": False}, 200)
        rid = self.store.create(obj, {**values, field: value}, allow_save=allow)
        return json({"id": rid, "success": True, "errors": [], "created": True}, 201)
