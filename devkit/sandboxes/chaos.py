"""Random faults in front of a CRM sandbox, for the chaos test
(tests/integration/load/test_chaos.py).

    sandbox.chaos = Chaos("hubspot", seed, prefix="/crm/", timeout_s=4, period_s=140)
    sandbox.chaos.begin()    # faults follow the schedule from now
    sandbox.chaos.end()      # no fault from now on

The schedule alternates quiet spells (no fault) and bursts in which 10-20% of
API requests get a fault, all drawn from `random.Random(f"{seed}:{name}")`, so a
seed replays the same schedule and the same sequence of fault kinds:

- `5xx`: 500/503 with the CRM's error body, or 502/504 with a gateway's HTML page;
- `429`: with an odd `Retry-After` (`0`, `1e12`, `inf`, `-5`, `nan`, text, an HTTP date);
- `slow`: the CRM applies the request, then answers after the client's timeout;
- `invalid_json`, `short`, `no_ids` (devkit/sandboxes/garble.py) and `null`
  (Salesforce `{"success": false, "errors": null}`, Airtable `"fields": null`,
  HubSpot `"errors": 1`): the CRM applies the request, its 2xx answer is mangled.

5xx and 429 are answered in front of the CRM (nothing applied), like a gateway.
A slow or mangled answer comes from a request the CRM did apply, at its arrival,
so a write never lands later than the requests sent after it (a CRM cannot be
fenced; the service could not be blamed for that).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from time import monotonic, time
from typing import Any

import orjson
from aiohttp import web

from devkit.sandboxes.chaos_bodies import error_body, json_response, limit_body, nulled
from devkit.sandboxes.garble import garbled

KINDS = ("5xx", "429", "slow", "invalid_json", "short", "no_ids", "null")
WEIGHTS = (30, 20, 15, 10, 10, 5, 10)
# Retry-After values, none of them a plain small delay: RFC 9110 allows only
# delay-seconds (digits) or an HTTP date, so most of these must be ignored.
ODD_RETRY_AFTER = ("0", "1e12", "inf", "-5", "nan", "soon, maybe", "date+2", "date-30")


@dataclass(frozen=True)
class Injected:
    at: float  # seconds since begin()
    method: str
    path: str
    kind: str
    detail: str


class Chaos:
    def __init__(
        self,
        name: str,
        seed: int,
        *,
        prefix: str,
        timeout_s: float,
        period_s: float,
        burst_rate: tuple[float, float] = (0.10, 0.20),
    ) -> None:
        """`name`: salesforce, hubspot or airtable (the bodies' dialect); `prefix`: the
        API paths faults apply to; `timeout_s`: the service's destination timeout."""
        self.name, self.prefix, self.timeout_s = name, prefix, timeout_s
        self.rng = random.Random(f"{seed}:{name}")
        self.phases = schedule(self.rng, period_s, burst_rate)
        self.started: float | None = None
        self.ended = False
        self.injected: list[Injected] = []

    def begin(self) -> None:
        self.started = monotonic()

    def end(self) -> None:
        self.ended = True

    def rate(self, elapsed: float) -> float:
        for start, stop, rate in self.phases:
            if start <= elapsed < stop:
                return rate
        return 0.0

    def draw(self, request: web.Request) -> str | None:
        if self.started is None or self.ended or not request.path.startswith(self.prefix):
            return None
        if self.rng.random() >= self.rate(monotonic() - self.started):
            return None
        return self.rng.choices(KINDS, WEIGHTS)[0]

    def note(self, request: web.Request, kind: str, detail: str = "") -> None:
        at = monotonic() - (self.started or monotonic())
        self.injected.append(Injected(round(at, 3), request.method, request.path, kind, detail))

    def counts(self) -> Counter[str]:
        return Counter(i.kind for i in self.injected)

    # -- answers ---------------------------------------------------------------------
    def server_error(self) -> tuple[web.Response, str]:
        status = self.rng.choice((500, 502, 503, 504))
        if status in (502, 504):  # a gateway in front of the CRM: HTML, not JSON
            page = f"<html><body><h1>{status} Gateway error</h1></body></html>"
            return web.Response(status=status, text=page, content_type="text/html"), str(status)
        return json_response(error_body(self.name, status), status), str(status)

    def rate_limited(self) -> tuple[web.Response, str]:
        value = self.rng.choice(ODD_RETRY_AFTER)
        if value.startswith("date"):
            value = formatdate(time() + float(value[4:]), usegmt=True)
        response = json_response(limit_body(self.name, self.rng), 429)
        response.headers["Retry-After"] = value
        return response, value

    def mangle(self, response: web.Response, kind: str) -> web.Response | None:
        """The 2xx JSON answer mangled by `kind`; None when it has nothing to mangle."""
        if not 200 <= response.status < 300 or not response.body:
            return None
        raw = bytes(response.body)  # type: ignore[arg-type]
        try:
            body = garbled(raw, kind) if kind != "null" else nulled(self.name, raw)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            return None  # not the shape this kind mangles
        if body == raw:
            return None
        mangled = web.Response(body=body, status=response.status, content_type="application/json")
        for header, value in response.headers.items():
            if header.lower() not in ("content-type", "content-length"):
                mangled.headers[header] = value
        return mangled


class Chaotic:
    """Mixed into HttpsSandbox: its outermost middleware applies `chaos`, if set."""

    chaos: Chaos | None = None

    @web.middleware
    async def _chaos(self, request: web.Request, handler: Any) -> web.StreamResponse:
        chaos = self.chaos
        kind = chaos.draw(request) if chaos is not None else None
        if chaos is None or kind is None:
            return await handler(request)  # type: ignore[no-any-return]
        if kind in ("5xx", "429"):
            await request.read()  # drain the body: an early answer keeps the connection whole
            response, detail = chaos.server_error() if kind == "5xx" else chaos.rate_limited()
            chaos.note(request, kind, detail)
            return response
        response = await handler(request)
        if kind == "slow":
            delay = chaos.timeout_s + chaos.rng.uniform(1.0, 3.0)
            chaos.note(request, kind, f"{delay:.1f}s after applying")
            await asyncio.sleep(delay)
            return response  # type: ignore[no-any-return]
        mangled = chaos.mangle(response, kind) if isinstance(response, web.Response) else None
        if mangled is None:
            return response  # type: ignore[no-any-return]
        chaos.note(request, kind, str(response.status))
        return mangled


def schedule(
    rng: random.Random, period_s: float, burst_rate: tuple[float, float]
) -> list[tuple[float, float, float]]:
    """(start, stop, fault rate) spells over `period_s`: quiet 6-15 s, bursts 5-15 s."""
    phases, at, burst = [], 0.0, rng.random() < 0.5
    while at < period_s:
        length = rng.uniform(5, 15) if burst else rng.uniform(6, 15)
        rate = rng.uniform(*burst_rate) if burst else 0.0
        phases.append((round(at, 2), round(min(period_s, at + length), 2), round(rate, 3)))
        at, burst = at + length, not burst
    return phases
