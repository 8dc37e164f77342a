"""An HTTPS HubSpot sandbox speaking CRM v3 for contacts and companies.

    async with HubSpotSandbox(tmp_path) as hs:
        hs.seed("companies", name="Analytical Engines", domain="analytical.example")
        secret = hs.credentials()      # {"access_token": ..., "base_url": "https://127.0.0.1:PORT"}
        ca = hs.ca_file                # the service's DESTINATION_CA_FILE

Property definitions (`GET /crm/v3/properties/{objectType}`, properties.py), bearer
auth, HubSpot's error bodies and X-HubSpot-RateLimit-* headers, a rolling
request window (190 per 10 s), search per second (4), a daily quota, fault
injection (`inject`, `store.reject`), and `GET /_sandbox/records` to look at
what was written (`POST /_sandbox/config {"latency_s": ...}` adds a round trip).
hubspot-api-client works against it unchanged.

Standalone (for a demo): `python -m devkit.sandboxes.hubspot [--port 8443] [--dir DIR]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

from aiohttp import web

from devkit.sandboxes.hubspot import batch
from devkit.sandboxes.hubspot.budget import Budget, limit_body
from devkit.sandboxes.hubspot.objects import object_routes
from devkit.sandboxes.hubspot.properties import HsProperty
from devkit.sandboxes.hubspot.schema_routes import property_routes
from devkit.sandboxes.hubspot.search import search
from devkit.sandboxes.hubspot.store import OBJECTS, Rec, Store, error_body
from devkit.sandboxes.hubspot.wire import object_of, read_body, reply
from devkit.sandboxes.oauth import TokenIssuer
from devkit.sandboxes.tls import HttpsSandbox

DEFAULT_TOKEN = "pat-na1-sandbox-0000-1111-2222-333344445555"
INPUTS = web.RequestKey("inputs", int)  # batch inputs or IN values, for the call log
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    status: int
    body: Any
    headers: dict[str, str]
    path: str | None
    times: int
    delay_s: float


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    at: float  # monotonic arrival time
    inputs: int  # batch inputs or IN values; 0 otherwise
    token: str = ""  # the token presented: which account asked


@dataclass
class HubSpotSandbox(HttpsSandbox):
    tls_dir: Path
    port: int = 0
    token: str = DEFAULT_TOKEN
    max_requests: int = 190
    window_s: float = 10.0
    search_per_s: int = 4
    daily_limit: int = 1_000_000
    properties: dict[str, dict[str, str | HsProperty]] | None = None
    search_lag_s: float = 0.0  # recently created records are not yet searchable
    multi_status_updates: bool = False
    latency_s: float = 0.0  # added to every CRM answer (a real round trip)
    calls: list[Call] = field(default_factory=list)
    # More accounts' tokens: each org of a load test is its own HubSpot account,
    # with its own rate budget on the service's side.
    account_tokens: set[str] = field(default_factory=set)
    # Each account token its own rate windows and day, as HubSpot limits per account
    # (`budgets`); otherwise one budget for every token (`budget`).
    per_account: bool = False

    def __post_init__(self) -> None:
        self.oauth = TokenIssuer("hubspot-sandbox", lifetime_s=1800.0)  # HubSpot: 30 minutes
        self.store = Store(self.properties)
        self.budget = Budget(self.max_requests, self.window_s, self.search_per_s, self.daily_limit)
        self.budgets: dict[str, Budget] = {}  # per_account: presented token -> its budget
        self._faults: list[Fault] = []

    # -- lifecycle -------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate], client_max_size=64 * 1024**2)
        app.router.add_post("/oauth/v1/token", self._token)
        app.router.add_get("/_sandbox/records", self._records)
        app.router.add_post("/_sandbox/config", self._configure)
        app.router.add_post("/crm/v3/objects/{obj}/search", self._search)
        app.router.add_post("/crm/v3/objects/{obj}/batch/{op}", self._batch)
        app.router.add_routes(object_routes(self.store))
        app.router.add_routes(property_routes(self.store))
        return app

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token, "base_url": self.base_url}

    def refresh_credentials(self) -> dict[str, str]:
        """A secret file with a refresh token and no access token (contract §4)."""
        return {"base_url": self.base_url, **self.oauth.credentials()}

    # -- test helpers ------------------------------------------------------------
    def seed(self, obj: str, **properties: Any) -> str:
        """Pre-create a record (no request, no budget spent); its id."""
        clean, issues = self.store.validate(obj, properties)
        assert not issues, issues
        rec = self.store.create(obj, clean)
        rec.born -= self.search_lag_s  # seeded records are already indexed
        return rec.id

    def define(self, obj: str, name: str, prop: str | HsProperty) -> None:
        """Declare (or add) a property: a type string, or an HsProperty with options."""
        self.store.define(obj, name, prop)

    def records(self, obj: str) -> list[Rec]:
        return sorted(self.store.records[obj].values(), key=lambda r: int(r.id))

    def find(self, obj: str, prop: str, value: str) -> Rec | None:
        return self.store.get(obj, value, prop)

    def inject(
        self,
        status: int,
        body: Any = None,
        *,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """The next `times` requests whose path contains `path` get this answer."""
        if body is None:
            body = error_body("Internal error (injected)", "INTERNAL_ERROR")
        self._faults.append(Fault(status, body, headers or {}, path, times, delay_s))

    def reset_daily(self) -> None:
        self.budget.daily_used = 0

    def count(self, path_end: str, status: int | None = None) -> int:
        return sum(
            1
            for c in self.calls
            if c.path.endswith(path_end) and (status is None or c.status == status)
        )

    def rejected(self) -> int:
        """429s answered, over every account."""
        budgets = [self.budget, *self.budgets.values()]
        return sum(sum(b.rejected.values()) for b in budgets)

    def _budget(self, token: str) -> Budget:
        if not self.per_account:
            return self.budget
        if token not in self.budgets:
            b = self.budget
            self.budgets[token] = Budget(b.max_requests, b.window_s, b.search_per_s, b.daily_limit)
        return self.budgets[token]

    # -- HTTP ----------------------------------------------------------------------
    def _fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and (fault.path is None or fault.path in path):
                fault.times -= 1
                return fault
        return None

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/crm/"):
            return await handler(request)
        arrived = monotonic()
        resp = await self._answer(request, handler)
        token = request.headers.get("Authorization", "").partition(" ")[2]
        self.calls.append(
            Call(request.method, request.path, resp.status, arrived, request.get(INPUTS, 0), token)
        )
        return resp

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await request.read()  # always drain the body: an early answer keeps the connection whole
        is_search = request.path.endswith("/search")
        fault = self._fault(request.path)
        if fault is not None:
            await asyncio.sleep(fault.delay_s)
            return reply(fault.status, fault.body, fault.headers)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        known = presented == self.token or presented in self.account_tokens
        if scheme != "Bearer" or not (known or self.oauth.valid(presented)):
            return reply(
                401,
                error_body(
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        budget = self._budget(presented)
        policy = budget.admit(is_search)
        headers = {} if is_search else budget.headers()  # search sends no limit headers
        if policy is not None:
            return reply(429, limit_body(policy), headers)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        resp = await handler(request)
        resp.headers.update(headers)
        return resp

    async def _batch(self, request: web.Request) -> web.Response:
        obj, op = object_of(request), request.match_info["op"]
        if op not in ("read", "create", "update", "upsert"):
            return reply(404, error_body(f"Unknown batch operation {op}", "OBJECT_NOT_FOUND"))
        body = await read_body(request)
        request[INPUTS] = len(body.get("inputs") or []) if isinstance(body, dict) else 0
        status, answer = batch.run(self.store, obj, op, body, self.multi_status_updates)
        return reply(status, answer)

    async def _search(self, request: web.Request) -> web.Response:
        obj = object_of(request)
        body = await read_body(request)
        if isinstance(body, dict):
            request[INPUTS] = sum(
                len(f.get("values") or [])
                for g in body.get("filterGroups") or []
                for f in g.get("filters") or []
            )
        status, answer = search(self.store, obj, body, self.search_lag_s)
        return reply(status, answer)

    async def _token(self, request: web.Request) -> web.Response:
        status, body = await self.oauth.grant(request)
        if status != 200:
            body = error_body("missing or invalid refresh token", "BAD_REFRESH_TOKEN")
            body["status"] = "BAD_REFRESH_TOKEN"
        return reply(status, body)

    async def _configure(self, request: web.Request) -> web.Response:
        """Local control for demos and benchmarks: {"latency_s": 0.05}."""
        body = await read_body(request)
        self.latency_s = float(body.get("latency_s", self.latency_s))
        return reply(200, {"latency_s": self.latency_s})

    async def _records(self, request: web.Request) -> web.Response:
        return reply(200, {obj: [r.json() for r in self.records(obj)] for obj in OBJECTS})
