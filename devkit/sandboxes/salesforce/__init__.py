"""An HTTPS Salesforce REST API sandbox: aiohttp + a trustme CA, real paths and bodies.

    /services/data/vXX.X/query?q=SOQL            (+ /query/{locator} pages)
    /services/data/vXX.X/sobjects[/{Obj}[/{id}|/describe|/{extIdField}/{value}]]
    /services/data/vXX.X/composite/sobjects      POST create, PATCH update, <= 200
    POST /services/oauth2/token                  refresh-token grant (devkit/sandboxes/oauth.py)
    GET /_sandbox/records                        every stored record, as JSON
    POST|DELETE /_sandbox/faults                 inject or clear failures
    POST /_sandbox/latency {"seconds": 0.05}     delay every API answer

It checks the bearer token, knows each object's fields (unknown -> INVALID_FIELD;
types, restricted picklists and duplicate rules a test declares: controls.py),
answers errors as Salesforce does (a JSON list of {message, errorCode, fields}),
sends `Sforce-Limit-Info`, and simple-salesforce works against it unchanged.

Run it standalone (prints the secret-file JSON and the CA path, Ctrl-C stops):

    .venv/bin/python -m devkit.sandboxes.salesforce --port 8443 --seed
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

from aiohttp import web

from devkit.sandboxes.oauth import TokenIssuer
from devkit.sandboxes.salesforce.api import N_RECORDS, WRITTEN, Api, Call, Fault, json
from devkit.sandboxes.salesforce.controls import SchemaControls
from devkit.sandboxes.salesforce.store import SfError, Store
from devkit.sandboxes.tls import HttpsSandbox

DEFAULT_TOKEN = "00DSANDBOX0000001!sandbox.salesforce.token"
API_VERSION = "62.0"
FAULT_BODIES = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1427319999-1 (-1)",
    ),
    503: ("SERVER_UNAVAILABLE", "Server unavailable"),
}


@dataclass(frozen=True)
class Write:
    """One saved record of a collection call, and the token that saved it."""

    token: str
    obj: str
    record_id: str
    values: dict[str, Any]  # as sent
    at: float  # monotonic


class SalesforceSandbox(HttpsSandbox, SchemaControls):
    def __init__(
        self,
        tls_dir: Path,
        *,
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        api_limit: int = 100_000,
        page_size: int = 2000,
    ) -> None:
        self.tls_dir = tls_dir
        self.port = port
        self.token = token  # assign a new one to "rotate" it
        self.api_limit = api_limit
        self.api_used = 0
        self.latency_s = 0.0
        self.store = Store()
        self.calls: list[Call] = []
        self.writes: list[Write] = []
        # More tokens accepted as the org's (an integration user per pod, in tests
        # that tell instances apart by the token each one writes with).
        self.account_tokens: set[str] = set()
        self.faults: list[Fault] = []
        self.api = Api(self.store, page_size)
        # Salesforce's token answer has no expires_in; the session timeout is `lifetime_s`.
        self.oauth = TokenIssuer("00DSANDBOX!sf", send_expires_in=False)

    # --- what tests and the demo use -------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        """The `$SECRETS_DIR/{ref}.json` content that points the service here."""
        return {
            "instance_url": self.base_url,
            "access_token": self.token,
            "api_version": API_VERSION,
        }

    def refresh_credentials(self) -> dict[str, Any]:
        """A secret file with a refresh token and no access token (contract §4)."""
        return {"instance_url": self.base_url, "api_version": API_VERSION,
                **self.oauth.credentials()}  # fmt: skip

    def seed(self, obj: str, *records: dict[str, Any]) -> list[str]:
        """Pre-create records (bypassing the API); returns their ids."""
        return [self.store.create(obj, dict(record)) for record in records]

    def records(self, obj: str) -> dict[str, dict[str, Any]]:
        return {
            rid: self.store.view(obj, rid, f"v{API_VERSION}") for rid in self.store.records[obj]
        }

    def fail(
        self,
        status: int,
        *,
        code: str | None = None,
        message: str | None = None,
        times: int | None = None,
        seconds: float | None = None,
        path: str | None = None,
    ) -> None:
        """Answer `status` to API calls (whose path contains `path`) `times` times or for
        `seconds`; with neither, until `clear_faults()`."""
        default_code, default_message = FAULT_BODIES.get(status, ("UNKNOWN_EXCEPTION", "error"))
        until = monotonic() + seconds if seconds is not None else None
        self.faults.append(
            Fault(status, code or default_code, message or default_message, times, until, path)
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for c in self.calls if c.method == method and path_part in c.path)

    # --- server -----------------------------------------------------------------------
    def _fault(self, path: str) -> Fault | None:
        now = monotonic()
        self.faults[:] = [
            f
            for f in self.faults
            if (f.remaining is None or f.remaining > 0) and (f.until is None or f.until > now)
        ]
        for fault in self.faults:
            if fault.path is None or fault.path in path:
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(("/_sandbox", "/services/oauth2/")):
            return await handler(request)  # type: ignore[no-any-return]
        fault = self._fault(request.path)  # decided on arrival, not after the delay
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        self.api_used += 1
        auth = request.headers.get("Authorization", "")
        scheme, _, presented = auth.partition(" ")
        try:
            if fault is not None:
                raise SfError(fault.status, fault.code, fault.message)
            accepted = (
                presented == self.token
                or presented in self.account_tokens
                or self.oauth.valid(presented)
            )
            if scheme.lower() not in ("bearer", "oauth") or not accepted:
                raise SfError(401, *FAULT_BODIES[401])
            if self.api_used > self.api_limit:
                raise SfError(403, *FAULT_BODIES[403])
            response = await handler(request)
        except SfError as exc:
            response = json(exc.body(), exc.status)
        finally:
            now = monotonic()
            written = request.get(WRITTEN, [])
            self.writes += [Write(presented, obj, rid, values, now) for obj, rid, values in written]
            self.calls.append(
                Call(
                    request.method,
                    request.path,
                    request.query.get("q"),
                    request.get(N_RECORDS, 0),
                    request.headers.get("Sforce-Auto-Assign"),
                    request.headers.get("Sforce-Duplicate-Rule-Header"),
                )
            )
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.api_limit}"
        return response  # type: ignore[no-any-return]

    async def _token(self, request: web.Request) -> web.Response:
        status, body = await self.oauth.grant(request)
        return json(body, status)

    async def _records(self, request: web.Request) -> web.Response:
        wanted = request.query.get("object")
        objects = [wanted] if wanted else list(self.store.records)
        return json(
            {obj: list(self.records(obj).values()) for obj in objects if obj in self.store.records}
        )

    async def _add_fault(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.fail(
            int(spec["status"]),
            **{k: spec[k] for k in ("code", "message", "times", "seconds", "path") if k in spec},
        )
        return web.Response(status=204)

    async def _latency(self, request: web.Request) -> web.Response:
        self.latency_s = float((await request.json())["seconds"])
        return web.Response(status=204)

    async def _clear(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/services/data/{version}/{tail:.*}", self.api.dispatch)
        app.router.add_post("/services/oauth2/token", self._token)
        app.router.add_get("/_sandbox/records", self._records)
        app.router.add_post("/_sandbox/faults", self._add_fault)
        app.router.add_delete("/_sandbox/faults", self._clear)
        app.router.add_post("/_sandbox/latency", self._latency)
        return app
