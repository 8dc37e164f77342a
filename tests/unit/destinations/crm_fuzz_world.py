"""A fake aiohttp session and a CRM world in which every lead already has its record,
for the answer fuzz test (tests/unit/destinations/test_crm_answer_fuzz.py).

Each CRM's `answer(request)` builds the valid answer the real API would give;
the fuzz test then mangles it (`FakeSession.mangle`) before the destination reads
it. Since every record exists, a valid answer never leads to a create or to
`record_not_found`: when one of those happens, a mangled answer was read as a miss.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL


@dataclass
class Request:
    method: str
    url: URL
    params: dict[str, str]
    body: Any  # parsed JSON, a form dict, or None

    @property
    def path(self) -> str:
        return self.url.path


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON value, or raw bytes to send as they are
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        # The stdlib encoder: it writes integers of any size, as a CRM may.
        return b"" if self.body is None else json.dumps(self.body).encode()


class _Response:
    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self.headers = CIMultiDictProxy(CIMultiDict(answer.headers))
        self._raw = answer.raw()

    async def read(self) -> bytes:
        return self._raw


Mangle = Callable[[Request, Answer], Answer]


class FakeSession:
    """What `service.destinations.http.send` and the OAuth grant use of aiohttp.ClientSession."""

    def __init__(self, world: Callable[[Request], Answer], mangle: Mangle) -> None:
        self.world, self.mangle = world, mangle
        self.requests: list[Request] = []

    def _handle(self, request: Request) -> _Response:
        self.requests.append(request)
        return _Response(self.mangle(request, self.world(request)))

    @asynccontextmanager
    async def request(
        self, method: str, url: str, *, data: bytes | None = None, params: Any = None, **_: Any
    ) -> AsyncIterator[_Response]:
        body = orjson.loads(data) if data else None
        yield self._handle(Request(method, URL(url), dict(params or {}), body))

    @asynccontextmanager
    async def post(self, url: str, *, data: Any = None, **_: Any) -> AsyncIterator[_Response]:
        yield self._handle(Request("POST", URL(url), {}, dict(data or {})))

    async def close(self) -> None:
        return None


def fake_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return prefix + digest[: 18 - len(prefix)]


_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


def literals(text: str) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", m) for m in _LITERAL.findall(text)]


# -- Salesforce ----------------------------------------------------------------------------
SF_URL = "https://sf.fuzz.example"
SF_HEADERS = {"Sforce-Limit-Info": "api-usage=10/15000"}
_SELECT = re.compile(r"SELECT (.+?) FROM (\w+) WHERE (\w+) IN \(", re.S)


class SalesforceWorld:
    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.cursors: dict[str, dict[str, Any]] = {}
        self.numbers = count()

    def __call__(self, request: Request) -> Answer:
        if request.path.endswith("/oauth2/token"):
            return Answer(
                200, {"access_token": "00Dfuzz!access-token-0001", "token_type": "Bearer"}
            )
        if "/query/" in request.path:
            page = self.cursors.pop(request.path.rsplit("/", 1)[1], None)
            if page is None:
                return Answer(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "gone"}])
            return Answer(200, page, dict(SF_HEADERS))
        if request.path.endswith("/query"):
            return Answer(200, self._query(request.params["q"]), dict(SF_HEADERS))
        if request.path.endswith("/composite/sobjects"):
            saved: list[dict[str, Any]] = [
                {"id": r.get("id") or fake_id("00Qnew", orjson.dumps(r).decode()),
                 "success": True, "errors": []}
                for r in request.body["records"]
            ]  # fmt: skip
            return Answer(200, saved, dict(SF_HEADERS))
        return Answer(404, [{"errorCode": "NOT_FOUND", "message": "no such path"}])

    def _query(self, soql: str) -> dict[str, Any]:
        match = _SELECT.match(soql)
        assert match is not None, soql
        fields, obj, by = [f.strip() for f in match.group(1).split(",")], match[2], match[3]
        rows = []
        for value in literals(soql[match.end() :]):
            row: dict[str, Any] = {"attributes": {"type": obj}, "Id": fake_id("00Q", obj, value)}
            if by == "Id":
                row["Id"] = value
            for name in fields[1:]:
                row[name] = fake_id("003", value) if name == "ConvertedContactId" else value
            rows.append(row)
        size = self.page_size
        pages = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
        names = [f"01gFUZZ{next(self.numbers):06d}-{size}" for _ in pages]
        answers: list[dict[str, Any]] = []
        for n, page in enumerate(pages):
            answer: dict[str, Any] = {"totalSize": len(rows), "done": n == len(pages) - 1,
                                      "records": page}  # fmt: skip
            if n < len(pages) - 1:
                answer["nextRecordsUrl"] = f"/services/data/v62.0/query/{names[n + 1]}"
            answers.append(answer)
        self.cursors.update(zip(names[1:], answers[1:], strict=True))
        return answers[0]


# -- HubSpot -------------------------------------------------------------------------------
HS_URL = "https://hs.fuzz.example"
HS_HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Daily": "500000",
    "X-HubSpot-RateLimit-Daily-Remaining": "499000",
}


def hubspot_world(request: Request) -> Answer:
    path = request.path
    if path == "/oauth/v1/token":
        token = {"access_token": "hs-access-token-0001", "refresh_token": "hs-refresh-0002",
                 "expires_in": 1800}  # fmt: skip
        return Answer(200, token)
    obj = path.split("/")[4]
    if path.endswith("/search"):
        search = request.body["filterGroups"][0]["filters"][0]
        prop = search["propertyName"]
        asked = request.body.get("properties") or [prop]
        results = [
            {
                "id": fake_id("1", obj, v),
                "properties": {
                    **{p: "held" for p in asked},  # if_empty's properties, when asked
                    prop: v,
                    "hs_object_id": fake_id("1", obj, v),
                },
            }
            for v in search["values"]
        ]
        return Answer(200, {"total": len(results), "results": results}, dict(HS_HEADERS))
    op = path.rsplit("/", 1)[1]
    if op == "read":  # if_empty's batch read: every record there, every property held
        props = request.body.get("properties") or []
        results = [
            {"id": str(i["id"]) if "idProperty" not in request.body else fake_id("1", obj, i["id"]),
             "properties": {**{p: "held" for p in props},
                            **({"email": i["id"]} if "idProperty" in request.body else {})}}
            for i in request.body["inputs"]
        ]  # fmt: skip
        return Answer(200, {"status": "COMPLETE", "results": results}, dict(HS_HEADERS))
    written: list[dict[str, Any]] = []
    for item in request.body["inputs"]:
        rid = item.get("id") if "idProperty" not in item else fake_id("1", obj, item["id"])
        rid = rid or fake_id("1", obj, orjson.dumps(item["properties"]).decode())
        written.append({"id": str(rid), "objectWriteTraceId": item["objectWriteTraceId"],
                        "properties": item["properties"], "new": op == "create"})  # fmt: skip
    return Answer(201 if op == "create" else 200, {"status": "COMPLETE", "results": written},
                  dict(HS_HEADERS))  # fmt: skip


# -- Airtable ------------------------------------------------------------------------------
AT_URL = "https://at.fuzz.example"


def airtable_world(request: Request) -> Answer:
    if request.method == "GET":
        fields = request.params["fields[]"]  # a list, as aiohttp takes it, or one name
        names = fields if isinstance(fields, list) else [fields]
        formula = request.params["filterByFormula"]
        by_id = formula.startswith("OR(RECORD_ID()")  # if_empty's read of known records
        held = {name: "held" for name in (names if by_id else names[1:])}  # if_empty cells
        records = [
            {"id": v if by_id else fake_id("rec", v), "createdTime": "2026-01-01T00:00:00.000Z",
             "fields": held if by_id else {names[0]: v, **held}}
            for v in literals(formula)
        ]  # fmt: skip
        return Answer(200, {"records": records})
    upsert = request.body.get("performUpsert")
    out = []
    for record in request.body["records"]:
        if upsert:
            merge_on = upsert["fieldsToMergeOn"][0]
            rid = fake_id("rec", str(record["fields"][merge_on]))
        else:
            rid = record["id"]
        out.append({"id": rid, "createdTime": "2026-01-01T00:00:00.000Z",
                    "fields": record["fields"]})  # fmt: skip
    answer: dict[str, Any] = {"records": out}
    if upsert:
        answer |= {"createdRecords": [], "updatedRecords": [r["id"] for r in out]}
    return Answer(200, answer)
