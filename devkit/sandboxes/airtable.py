"""An HTTPS sandbox of the Airtable Web API v0, for tests, the benchmark and `make run`.

It speaks the real wire format: `GET /v0/{baseId}/{table}` with `filterByFormula`
(`OR`, `AND`, `NOT`, `=`, `!=` over `{Field}` references, `RECORD_ID()` and
quoted strings) and `fields[]`,
`POST .../listRecords`, `POST`/`PATCH`/`PUT` of at most 10 records with
`performUpsert.fieldsToMergeOn`, get/update/delete by record id, bearer auth, error
bodies `{"error": {"type", "message"}}`, a per-base limit of 5 requests per second
with Airtable's 30-second penalty after a 429, and fault injection (`inject`).
Tables have typed columns, so unknown fields, bad select options and over-long
text are refused the way Airtable refuses them. `GET /_sandbox/records` shows
every stored record.

Standalone (prints one JSON line: base_url, ca_file, credentials; Ctrl-C stops it):

    .venv/bin/python -m devkit.sandboxes.airtable --port 8443 --dir /tmp/airtable-sandbox
    (options: --rate-limit 5 --penalty-s 30 --latency-ms 0)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import string
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any

import orjson
from aiohttp import web

from devkit.sandboxes.airtable_schema import base_schema, refusal
from devkit.sandboxes.tls import HttpsSandbox

DEFAULT_TOKEN = "patSandbox0000000.sandbox-airtable-token"
DEFAULT_BASE = "appSandbox0000001"
MAX_RECORDS = 10
TEXT_LIMIT = 100_000
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Column:
    """An Airtable field: `type` as in the schema API; `choices` for singleSelect and
    multipleSelects (see airtable_schema.py for the types and what they refuse)."""

    type: str = "singleLineText"
    choices: tuple[str, ...] = ()


SCORE = Column("singleSelect", ("hot", "warm", "cold"))
TS_COLUMNS = {
    "TS Score": SCORE,
    "TS Reasoning": Column("multilineText"),
    "TS Evaluated At": Column("dateTime"),
}
DEFAULT_TABLES: dict[str, dict[str, Column]] = {
    "Contacts": {
        "Email": Column("email"),
        "First Name": Column(),
        "Last Name": Column(),
        "Company": Column(),
        **TS_COLUMNS,
    },
    "Companies": {"Name": Column(), "Domain": Column(), **TS_COLUMNS},
}


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message

    def response(self) -> web.Response:
        return _json({"error": {"type": self.type, "message": self.message}}, self.status)


@dataclass
class Fault:
    """Answer the next `times` matching requests with this error (or just delay them)."""

    status: int | None
    type: str = "SERVER_ERROR"
    message: str = "Server error"
    times: int = 1
    method: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    base: str
    status: int
    at: float  # monotonic arrival time
    records: int  # records in a write body


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _new_id(prefix: str = "rec") -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(14))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- filterByFormula: the subset the destination (and pyairtable users) send ----------

_TOKEN = re.compile(
    r"""\s*(?:(?P<field>\{(?:\\.|[^\\}])*\})|(?P<str>'(?:\\.|[^\\'])*'|"(?:\\.|[^\\"])*")"""
    r"""|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_]+)|(?P<op>!=|=|\(|\)|,))"""
)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _tokens(formula: str) -> list[tuple[str, str]]:
    out, pos, end = [], 0, len(formula.rstrip())
    while pos < end:
        m = _TOKEN.match(formula, pos)
        if m is None or m.lastgroup is None:
            raise ValueError(f"unexpected text at {pos}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


class Formula:
    """Parses once, then `matches(fields)` per record. Raises ValueError when invalid."""

    def __init__(self, text: str, columns: Mapping[str, Column]) -> None:
        self._toks, self._pos, self._columns = _tokens(text), 0, columns
        self._tree = self._expr()
        if self._pos != len(self._toks):
            raise ValueError("trailing tokens")
        self._test: Test | None = None

    def _next(self) -> tuple[str, str]:
        if self._pos >= len(self._toks):
            raise ValueError("unexpected end of formula")
        self._pos += 1
        return self._toks[self._pos - 1]

    def _peek(self) -> str | None:
        return self._toks[self._pos][1] if self._pos < len(self._toks) else None

    def _expr(self) -> Any:
        left = self._primary()
        if self._peek() in ("=", "!="):
            op = self._next()[1]
            return (op, left, self._primary())
        return left

    def _primary(self) -> Any:
        kind, text = self._next()
        if kind == "field":
            name = _unescape(text[1:-1])
            if name not in self._columns:
                raise ValueError(f"Unknown field names: {name.lower()}")
            return ("field", name)
        if kind == "str":
            return ("lit", _unescape(text[1:-1]))
        if kind == "num":
            return ("lit", float(text))
        if kind == "op" and text == "(":
            inner = self._expr()
            if self._next()[1] != ")":
                raise ValueError("expected )")
            return inner
        if kind == "name" and self._next()[1] == "(":
            args = []
            while self._peek() != ")":
                args.append(self._expr())
                if self._peek() == ",":
                    self._next()
            self._next()
            fn = text.upper()
            if fn not in ("OR", "AND", "NOT", "TRUE", "FALSE", "RECORD_ID"):
                raise ValueError(f"unknown function {text}")
            return (fn, *args)
        raise ValueError(f"unexpected {text!r}")

    def matches(self, fields: Mapping[str, Any]) -> bool:
        if self._test is None:
            self._test = _compile(self._tree)
        return bool(self._test(fields))


Test = Callable[[Mapping[str, Any]], Any]
RECORD_ID = "\0record id"  # where matches() finds the record's id (never a column name)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, int | float) != isinstance(right, int | float):
        left, right = str(left), str(right)
    return bool(left == right)


def _string_test(arg: Any) -> tuple[str, str] | None:
    """(field, text) for `{field}='text'` (or `RECORD_ID()='rec...'`), the shape a lookup
    formula repeats."""
    if arg[0] != "=" or arg[2][0] != "lit" or not isinstance(arg[2][1], str):
        return None
    if arg[1][0] == "field":
        return arg[1][1], arg[2][1]
    return (RECORD_ID, arg[2][1]) if arg[1] == ("RECORD_ID",) else None


def _compile(node: Any) -> Test:
    """A closure per node; `OR({F}='a',{F}='b',...)` becomes one set lookup."""
    head, *args = node
    if head == "lit":
        value = args[0]
        return lambda fields: value
    if head == "field":
        name = args[0]
        return lambda fields: "" if fields.get(name) is None else fields[name]
    if head == "RECORD_ID":
        return lambda fields: fields.get(RECORD_ID, "")
    if head in ("=", "!="):
        left, right, same = _compile(args[0]), _compile(args[1]), head == "="
        return lambda fields: _equal(left(fields), right(fields)) == same
    if head == "OR":
        wanted: dict[str, set[str]] = {}
        rest = []
        for arg in args:
            if (pair := _string_test(arg)) is not None:
                wanted.setdefault(pair[0], set()).add(pair[1])
            else:
                rest.append(_compile(arg))

        def any_of(fields: Mapping[str, Any]) -> bool:
            for name, values in wanted.items():
                value = fields.get(name)
                if ("" if value is None else str(value)) in values:
                    return True
            return any(test(fields) for test in rest)

        return any_of
    parts = [_compile(arg) for arg in args]
    if head == "AND":
        return lambda fields: all(test(fields) for test in parts)
    if head == "NOT":
        return lambda fields: not parts[0](fields)
    return lambda fields: head == "TRUE"


# -- the server ----------------------------------------------------------------------


class AirtableSandbox(HttpsSandbox):
    def __init__(
        self,
        tls_dir: Path,
        *,
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        base_id: str = DEFAULT_BASE,
        tables: Mapping[str, Mapping[str, Column]] | None = None,
        rate_limit: int = 5,
        rate_window_s: float = 1.0,
        penalty_s: float = 30.0,
        latency_s: float = 0.0,
    ) -> None:
        self.tls_dir, self.port, self.token, self.base_id = tls_dir, port, token, base_id
        self.schema = {name: dict(cols) for name, cols in (tables or DEFAULT_TABLES).items()}
        self.rate_limit, self.rate_window_s, self.penalty_s = rate_limit, rate_window_s, penalty_s
        self.latency_s = latency_s  # added to every API answer, like a real round trip
        self.records: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}  # base->table->id
        self.hits: list[Hit] = []
        self.faults: list[Fault] = []
        self._arrivals: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    # -- lifecycle --

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/_sandbox/records", self._dump)
        app.router.add_get("/v0/meta/bases/{base}/tables", self._meta)
        app.router.add_route("*", "/v0/{base}/{table}", self._table)
        app.router.add_route("*", "/v0/{base}/{table}/{rest}", self._record)
        return app

    def credentials(self, base_id: str | None = None) -> dict[str, str]:
        """The `$SECRETS_DIR/{credentials_ref}.json` content (contract §4)."""
        return {
            "api_key": self.token,
            "base_id": base_id or self.base_id,
            "base_url": self.base_url,
        }

    # -- test helpers --

    def seed(self, table: str, rows: list[dict[str, Any]], base_id: str | None = None) -> list[str]:
        """Pre-create records (no validation); returns their ids."""
        store = self._table_store(base_id or self.base_id, table)
        ids = []
        for fields in rows:
            record_id = _new_id()
            store[record_id] = {"id": record_id, "createdTime": _now(), "fields": dict(fields)}
            ids.append(record_id)
        return ids

    def table(self, table: str, base_id: str | None = None) -> list[dict[str, Any]]:
        return list(self._table_store(base_id or self.base_id, table).values())

    def inject(self, status: int | None = 503, type: str = "SERVER_ERROR", **kw: Any) -> Fault:
        fault = Fault(status, type, **kw)
        self.faults.append(fault)
        return fault

    def calls(self, method: str | None = None, status: int | None = None) -> list[Hit]:
        return [
            h
            for h in self.hits
            if (method is None or h.method == method) and (status is None or h.status == status)
        ]

    # -- middleware: auth, rate limit, faults, accounting --

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/v0/"):
            return await handler(request)  # type: ignore[no-any-return]
        base = request.match_info.get("base") or request.path.split("/")[2]  # meta: per base too
        arrived = monotonic()
        try:
            self._check_auth(request)
            self._check_rate(base, arrived)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            response = await self._apply_fault(request) or await handler(request)
        except ApiError as err:
            response = err.response()
        writing = request.method in ("POST", "PATCH", "PUT")
        records = _count_records(await request.read()) if writing else 0  # read() is cached
        self.hits.append(Hit(request.method, request.path, base, response.status, arrived, records))
        return response

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise ApiError(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        if not secrets.compare_digest(auth[7:].strip(), self.token):
            raise ApiError(401, "AUTHENTICATION_REQUIRED", "Invalid authentication token")

    def _check_rate(self, base: str, now: float) -> None:
        if now < self._blocked_until.get(base, 0.0):
            raise ApiError(429, "TOO_MANY_REQUESTS", "Rate limit exceeded. Please try again later")
        window = self._arrivals.setdefault(base, deque())
        while window and window[0] <= now - self.rate_window_s:
            window.popleft()
        if len(window) >= self.rate_limit:
            self._blocked_until[base] = now + self.penalty_s
            raise ApiError(429, "TOO_MANY_REQUESTS", "Rate limit exceeded. Please try again later")
        window.append(now)

    async def _apply_fault(self, request: web.Request) -> web.Response | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method in (None, request.method):
                fault.times -= 1
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                if fault.status is None:
                    return None
                body = {"error": {"type": fault.type, "message": fault.message}}
                response = _json(body, fault.status)
                response.headers.update(fault.headers)
                return response
        return None

    async def _dump(self, request: web.Request) -> web.Response:
        return _json(self.records)

    async def _meta(self, request: web.Request) -> web.Response:
        """Get base schema (read-only; the token needs schema.bases:read)."""
        base = request.match_info["base"]
        if not re.fullmatch(r"app[0-9A-Za-z]{14}", base):
            raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")
        return _json(base_schema(self.schema))

    # -- routes --

    def _table_store(self, base: str, table: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(base, {}).setdefault(table, {})

    def _resolve(self, request: web.Request) -> tuple[dict[str, dict[str, Any]], str]:
        base, table = request.match_info["base"], request.match_info["table"]
        if not re.fullmatch(r"app[0-9A-Za-z]{14}", base):
            raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")
        if table not in self.schema:
            raise ApiError(
                404, "TABLE_NOT_FOUND", f"Could not find table {table} in application {base}"
            )
        return self._table_store(base, table), table

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            raise ApiError(400, "INVALID_REQUEST_BODY", "Could not parse request body") from None
        if not isinstance(body, dict):
            raise ApiError(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed"
            )
        return body

    async def _table(self, request: web.Request) -> web.Response:
        store, table = self._resolve(request)
        if request.method == "GET":
            query = request.query
            options = {
                "filterByFormula": query.get("filterByFormula"),
                "pageSize": query.get("pageSize"),
                "maxRecords": query.get("maxRecords"),
                "offset": query.get("offset"),
                "fields": query.getall("fields[]", []) or query.getall("fields", []),
            }
            return _json(self._list(store, table, options))
        body = await self._body(request)
        if request.method == "POST":
            return _json(self._create(store, table, body))
        if request.method in ("PATCH", "PUT"):
            return _json(self._update_many(store, table, body, replace=request.method == "PUT"))
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    async def _record(self, request: web.Request) -> web.Response:
        store, table = self._resolve(request)
        rest = request.match_info["rest"]
        if rest == "listRecords" and request.method == "POST":
            return _json(self._list(store, table, await self._body(request)))
        record = store.get(rest)
        if record is None:
            raise ApiError(404, "MODEL_ID_NOT_FOUND", "Record not found")
        if request.method == "GET":
            return _json(record)
        if request.method == "DELETE":
            del store[rest]
            return _json({"id": rest, "deleted": True})
        if request.method in ("PATCH", "PUT"):
            fields = (await self._body(request)).get("fields")
            self._validate(table, fields)
            assert isinstance(fields, dict)
            record["fields"] = {**({} if request.method == "PUT" else record["fields"]), **fields}
            return _json(record)
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    def _list(self, store: dict[str, Any], table: str, options: Mapping[str, Any]) -> Any:
        rows = list(store.values())
        if options.get("filterByFormula"):
            try:
                formula = Formula(str(options["filterByFormula"]), self.schema[table])
            except ValueError as exc:
                raise ApiError(
                    422,
                    "INVALID_FILTER_BY_FORMULA",
                    f"The formula for filtering records is invalid: {exc}",
                ) from None
            rows = [r for r in rows if formula.matches({**r["fields"], RECORD_ID: r["id"]})]
        if options.get("maxRecords"):
            rows = rows[: int(options["maxRecords"])]
        size = int(options.get("pageSize") or 100)
        if not 1 <= size <= 100:
            raise ApiError(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed"
            )
        start = int(str(options.get("offset") or "itr0").removeprefix("itr") or 0)
        page = rows[start : start + size]
        wanted = options.get("fields") or []
        if wanted:
            page = [
                {**r, "fields": {k: v for k, v in r["fields"].items() if k in wanted}} for r in page
            ]
        out: dict[str, Any] = {"records": page}
        if start + size < len(rows):
            out["offset"] = f"itr{start + size}"
        return out

    def _records_of(self, body: Mapping[str, Any], *, need_id: bool) -> list[dict[str, Any]]:
        records = body.get("records")
        what = 'an "id" ID field and a "fields" object' if need_id else 'a "fields" object'
        message = (
            f"You must provide an array of up to 10 record objects, each with {what}"
            " for cell values."
        )
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_RECORDS:
            raise ApiError(422, "INVALID_RECORDS", message)
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
                raise ApiError(422, "INVALID_RECORDS", message)
            if need_id and not isinstance(record.get("id"), str):
                raise ApiError(422, "INVALID_RECORDS", message)
        return records

    def _validate(self, table: str, fields: Any) -> None:
        if not isinstance(fields, dict):
            raise ApiError(422, "INVALID_RECORDS", 'Each record needs a "fields" object')
        columns = self.schema[table]
        for name, value in fields.items():
            column = columns.get(name)
            if column is None:
                raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if value is None:
                continue
            refused = refusal(name, column, value)
            if refused is not None:
                raise ApiError(422, *refused)
            if column.type == "singleSelect" and value not in column.choices:
                raise ApiError(
                    422,
                    "INVALID_MULTIPLE_CHOICE_OPTIONS",
                    f'Insufficient permissions to create new select option ""{value}""',
                )
            if not _valid(column, value):
                raise ApiError(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f'Field "{name}" cannot accept the provided value',
                )

    def _create(self, store: dict[str, Any], table: str, body: Mapping[str, Any]) -> Any:
        single = "records" not in body
        records = (
            [{"fields": body.get("fields")}] if single else self._records_of(body, need_id=False)
        )
        for record in records:
            self._validate(table, record["fields"])
        created = []
        for record in records:
            record_id = _new_id()
            new = {"id": record_id, "createdTime": _now(), "fields": dict(record["fields"] or {})}
            store[record_id] = new
            created.append(new)
        return created[0] if single else {"records": created}

    def _update_many(
        self, store: dict[str, Any], table: str, body: Mapping[str, Any], *, replace: bool
    ) -> Any:
        upsert = body.get("performUpsert")
        merge_on: list[str] = []
        if upsert is not None:
            merge_on = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None  # type: ignore[assignment]
            if not isinstance(merge_on, list) or not 1 <= len(merge_on) <= 3:
                raise ApiError(
                    422, "INVALID_REQUEST_UNKNOWN", "fieldsToMergeOn must list 1 to 3 fields"
                )
            for name in merge_on:
                if name not in self.schema[table]:
                    raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        records = self._records_of(body, need_id=upsert is None)
        # Airtable applies a batch all or nothing: validate everything first.
        targets: list[dict[str, Any] | None] = []
        index: dict[str, list[dict[str, Any]]] | None = None
        for record in records:
            self._validate(table, record["fields"])
            if "id" in record:
                if record["id"] not in store:
                    raise ApiError(
                        404, "MODEL_ID_NOT_FOUND", f"Could not find record {record['id']}"
                    )
                targets.append(store[record["id"]])
                continue
            if any(name not in record["fields"] for name in merge_on):
                raise ApiError(
                    422, "INVALID_RECORDS", "Each record must include every fieldsToMergeOn field"
                )
            if index is None:  # built once per request
                index = {}
                for row in store.values():
                    index.setdefault(_key(row["fields"], merge_on), []).append(row)
            found = index.get(_key(record["fields"], merge_on), [])
            if len(found) > 1:
                raise ApiError(
                    422, "INVALID_MULTIPLE_MATCHES", "More than one record matches fieldsToMergeOn"
                )
            targets.append(found[0] if found else None)
        out: dict[str, Any] = {"records": []}
        created, updated = [], []
        for record, existing in zip(records, targets, strict=True):
            if existing is None:
                existing = {"id": _new_id(), "createdTime": _now(), "fields": {}}
                store[existing["id"]] = existing
                created.append(existing["id"])
            else:
                updated.append(existing["id"])
            existing["fields"] = {**({} if replace else existing["fields"]), **record["fields"]}
            out["records"].append(existing)
        if upsert is not None:
            out["createdRecords"], out["updatedRecords"] = created, updated
        return out


def _key(fields: Mapping[str, Any], names: list[str]) -> str:
    return orjson.dumps([fields.get(n) for n in names]).decode()


def _count_records(raw: bytes) -> int:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(body, dict):
        return 0
    records = body.get("records")
    return len(records) if isinstance(records, list) else int(isinstance(body.get("fields"), dict))


def _valid(column: Column, value: Any) -> bool:
    if column.type in ("singleLineText", "multilineText", "singleSelect", "url", "phoneNumber"):
        return isinstance(value, str) and len(value) <= TEXT_LIMIT
    if column.type == "email":
        return isinstance(value, str) and (value == "" or "@" in value)
    if column.type == "date":  # a day; Airtable also reads a full ISO date-time here
        return isinstance(value, str) and bool(re.match(r"\d{4}-\d{2}-\d{2}", value))
    if column.type == "checkbox":
        return isinstance(value, bool)
    if column.type == "multipleSelects":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if column.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if column.type == "dateTime":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return False
        return isinstance(value, str)
    return True


async def _main(args: argparse.Namespace, directory: Path) -> None:
    sandbox = AirtableSandbox(
        directory,
        port=args.port,
        rate_limit=args.rate_limit,
        penalty_s=args.penalty_s,
        latency_s=args.latency_ms / 1000,
    )
    async with sandbox:
        line = {"base_url": sandbox.base_url, "ca_file": str(sandbox.ca_file)}
        print(orjson.dumps({**line, "credentials": sandbox.credentials()}).decode(), flush=True)
        await asyncio.Event().wait()  # until interrupted


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Airtable Web API sandbox (HTTPS)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="where to write sandbox-ca.pem")
    parser.add_argument("--rate-limit", type=int, default=5, help="requests per second per base")
    parser.add_argument("--penalty-s", type=float, default=30.0, help="lock-out after a 429")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="airtable-sandbox-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_main(args, folder))
    except KeyboardInterrupt:
        sys.exit(0)
