"""The refresh-token grant as the CRM sandboxes serve it, with expiring access tokens.

Salesforce: POST /services/oauth2/token answers `{access_token, instance_url, id,
token_type, issued_at, signature}` (no expires_in: the session timeout decides);
HubSpot: POST /oauth/v1/token answers `{access_token, refresh_token, expires_in,
token_type}`. A bad grant is a 400 (`invalid_grant` / `BAD_REFRESH_TOKEN`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from aiohttp import web


@dataclass
class TokenIssuer:
    prefix: str
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret-0000"
    refresh_token: str = "sandbox-refresh-token-0000"
    lifetime_s: float = 3600.0
    send_expires_in: bool = True
    rotate: bool = False  # hand out a new refresh token with each grant
    delay_s: float = 0.0  # a slow token endpoint: concurrent refreshes would pile up
    grants: int = 0
    refused: int = 0
    issued: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def valid(self, token: str) -> bool:
        expiry = self.issued.get(token)
        return expiry is not None and expiry > monotonic()

    def expire_all(self) -> None:
        for token in self.issued:
            self.issued[token] = 0.0

    async def grant(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        form = await request.post()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        ok = (
            form.get("grant_type") == "refresh_token"
            and form.get("refresh_token") == self.refresh_token
            and form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
        )
        if not ok:
            self.refused += 1
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        self.grants += 1
        token = f"{self.prefix}-access-{next(self._ids):04d}"
        self.issued[token] = monotonic() + self.lifetime_s
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.send_expires_in:
            body["expires_in"] = int(self.lifetime_s)
        else:
            body["issued_at"] = str(int(time.time() * 1000))
        if self.rotate:
            self.refresh_token = f"{self.prefix}-refresh-{self.grants:04d}"
            body["refresh_token"] = self.refresh_token
        return 200, body

    def credentials(self) -> dict[str, str]:
        return {
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
