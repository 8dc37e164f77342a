"""On HTTP_PORT: `GET /metrics`, `/healthz` (liveness), `/readyz` (readiness) (§7),
and `GET /v1/destinations[?org=ORG&destination=NAME]`, the state of each loaded
(org, destination) as this instance sees it (docs/operations.md, "Status endpoint")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.states import DestinationStates
from service.metrics import Metrics

Check = Callable[[], tuple[bool, str]]


def make_app(
    metrics: Metrics, live: Check, ready: Check, states: DestinationStates | None = None
) -> web.Application:
    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def probe(check: Check) -> Callable[[web.Request], object]:
        async def view(_: web.Request) -> web.Response:
            ok, why = check()
            return web.json_response({"ok": ok, "detail": why}, status=200 if ok else 503)

        return view

    async def destinations_view(request: web.Request) -> web.Response:
        assert states is not None
        org = request.query.get("org") or None
        destination = request.query.get("destination") or None
        rows = states.states(org, destination)
        return web.json_response({"destinations": [asdict(row) for row in rows]})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", probe(live))  # type: ignore[arg-type]
    app.router.add_get("/readyz", probe(ready))  # type: ignore[arg-type]
    if states is not None:
        app.router.add_get("/v1/destinations", destinations_view)
    return app


class HttpServer:
    def __init__(self, app: web.Application, port: int, host: str = "0.0.0.0") -> None:
        self.runner = web.AppRunner(app, access_log=None)
        self.port = port
        self.host = host

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # tests ask for any free port
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.runner.cleanup()
