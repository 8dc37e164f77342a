"""One local certificate authority (trustme) for every HTTPS sandbox, and the
server lifecycle they share (`HttpsSandbox`).

`sandbox_tls(directory)` returns the server SSL context for 127.0.0.1/localhost and
writes the CA bundle to `directory/sandbox-ca.pem`, the file the service gets as
`DESTINATION_CA_FILE`.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Self

import trustme
from aiohttp import web

from devkit.sandboxes.chaos import Chaotic
from devkit.sandboxes.garble import Garbler


@lru_cache(maxsize=1)
def _ca() -> trustme.CA:
    return trustme.CA()


def sandbox_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    ca = _ca()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


class HttpsSandbox(Garbler, Chaotic):
    """Lifecycle shared by the CRM sandboxes: serve `app()` over HTTPS on
    127.0.0.1 with the sandbox CA; `start`/`stop` or `async with`.

    A subclass sets `tls_dir` and `port` (0 picks a free one) and builds its
    routes in `app()`.
    """

    tls_dir: Path
    port: int
    _runner: web.AppRunner | None = None
    _tls_pair: tuple[ssl.SSLContext, Path] | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def _tls(self) -> tuple[ssl.SSLContext, Path]:
        if self._tls_pair is None:
            self._tls_pair = sandbox_tls(self.tls_dir)
        return self._tls_pair

    async def start(self) -> Self:
        ssl_context, _ = self._tls()
        self.garbles = []
        app = self.app()
        app.middlewares.append(self._garble)  # innermost: the answer as the CRM wrote it
        app.middlewares.insert(
            0, self._chaos
        )  # outermost: a gateway's faults (devkit/sandboxes/chaos.py)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        # A client that keeps its socket without a TLS close_notify (requests does,
        # inside a caught exception) would leave the server's SSL shutdown waiting.
        server = self._runner.server
        for transport in list(server._connections.values()) if server is not None else []:
            transport.abort()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self._tls()[1]
