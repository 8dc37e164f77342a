"""One read-only GET of a schema endpoint, with the destination's bearer token.

A file with a refresh token gets its access token from the grant (in memory only)
and one fresh grant after a 401, as the service does. Tokens never reach a
message: CRM answers are reduced to their status and error text, then redacted.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from service.destinations.oauth import RefreshSpec, TokenSource
from service.errors import CredentialsUnavailable, DeliveryError
from service.http import error_for_status, send
from service.metrics import Metrics


def answer_text(body: Any) -> str:
    """The error words of a Salesforce list, a HubSpot or an Airtable error body."""
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        inner = first.get("error")
        if isinstance(inner, dict):  # Airtable: {"error": {"type", "message"}}
            return f"{inner.get('type', '')}: {inner.get('message', '')}"
        code = first.get("errorCode") or first.get("category") or ""
        return f"{code}: {first.get('message', '')}".strip(": ")
    return str(body)[:200]


class Reader:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        destination: str,
        access_token: str | None,
        refresh: RefreshSpec | None,
        lifetime_s: float,
    ) -> None:
        self.session, self.destination = session, destination
        self.metrics = Metrics()
        self.initial, self.refresh = access_token, refresh
        self.tokens = TokenSource(destination, self.metrics, default_lifetime_s=lifetime_s)

    async def _token(self) -> str:
        if self.refresh is None:
            if self.initial is None:
                raise CredentialsUnavailable(f"{self.destination} secret has no access token")
            return self.initial
        return await self.tokens.token(self.session, self.refresh, self.initial)

    async def get(self, url: str, *, missing_ok: bool = False) -> Any:
        """The JSON answer; None for a 404 when `missing_ok` (no such object)."""
        token = await self._token()
        for attempt in range(2):
            resp = await send(
                self.session,
                "GET",
                url,
                destination=self.destination,
                metrics=self.metrics,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            if resp.status == 401 and self.refresh is not None and attempt == 0:
                token = await self.tokens.after_401(self.session, self.refresh, token)
                continue
            if resp.ok:
                return resp.body
            if missing_ok and resp.status in (400, 404):  # HubSpot: 400 for an unknown type
                return None
            break
        raise _refused(self.destination, resp.status, resp.body)


def _refused(destination: str, status: int, body: Any) -> DeliveryError:
    return error_for_status(status, f"{destination} answered HTTP {status}: {answer_text(body)}")
