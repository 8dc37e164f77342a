"""The HTTP edge: one HubSpot account (token) over the pooled aiohttp session.

Same REST paths as hubspot-api-client, called directly: the SDK is synchronous
(urllib3) and would block the event loop; `bench/hubspot_client.py` measures
the difference.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from service.destinations.budget import DailyBudget
from service.destinations.http import Response, header_number, send
from service.destinations.hubspot.errors import message_of
from service.destinations.hubspot.limits import TokenLimits
from service.destinations.oauth import RefreshSpec, TokenSource, secret_text
from service.errors import (
    AuthFailed,
    CredentialsUnavailable,
    QuotaExhausted,
    RateLimited,
)
from service.metrics import Metrics

NAME = "hubspot"
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """The secret file: base_url, and an access_token and/or refresh_token, client_id,
    client_secret (refreshed at {base_url}/oauth/v1/token)."""

    base_url: str
    access_token: str | None = field(repr=False)
    refresh: RefreshSpec | None = None
    owner: str = ""  # the credentials file (config.integration.credentials_ref)

    @classmethod
    def parse(cls, data: Mapping[str, object], account: str = "") -> Credentials:
        """The secret file's fields, each checked for its type. `account` names the
        credentials file: its rate windows and budget whatever its token."""
        token, base = secret_text(data.get("access_token")), data.get("base_url")
        if not isinstance(base, str) or not base.startswith("https://"):
            raise CredentialsUnavailable("HubSpot secret needs an https:// base_url")
        base = base.rstrip("/")
        refresh = RefreshSpec.parse(data, f"{base}/oauth/v1/token", NAME, owner=account)
        if token is None and refresh is None:
            raise CredentialsUnavailable("HubSpot secret has no access_token or refresh_token")
        return cls(base, token, refresh, account)

    @property
    def key(self) -> str:
        """A file's grant or token, hashed: the key holds no secret."""
        who = self.refresh.key if self.refresh is not None else str(self.access_token)
        return hashlib.sha256(f"{self.base_url}\0{who}".encode()).hexdigest()[:16]

    @property
    def account(self) -> str:
        """Rate windows and the daily budget: per credentials file, so a rotated token
        keeps its account's counts (and adds no entry); the hashed key without one."""
        return self.owner or self.key


async def gather_all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; a batch-wide error (401, 429) cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        leaves = list(_leaves(eg))
        for kind in (AuthFailed, QuotaExhausted, RateLimited, BaseException):
            for leaf in leaves:
                if isinstance(leaf, kind):
                    raise leaf from None
        raise
    return [t.result() for t in tasks]


def _leaves(eg: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for exc in eg.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


class HubSpotClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: Credentials,
        limits: TokenLimits,
        metrics: Metrics,
        tokens: TokenSource,
        budget: DailyBudget | None = None,
    ) -> None:
        self.creds, self.base_url = credentials, credentials.base_url
        self.account = credentials.account
        self.session, self.limits, self.metrics, self.tokens = session, limits, metrics, tokens
        self.budget = budget

    async def _token(self) -> str:
        if self.creds.refresh is None:
            assert self.creds.access_token is not None
            return self.creds.access_token
        return await self.tokens.token(self.session, self.creds.refresh, self.creds.access_token)

    async def _send(self, path: str, body: Any, search: bool, token: str) -> Response:
        async with self.limits.slot(search):
            return await send(
                self.session,
                "POST",
                self.base_url + path,
                destination=NAME,
                metrics=self.metrics,
                headers={"Authorization": f"Bearer {token}"},
                json=body,
            )

    async def post(self, path: str, body: Any, *, search: bool = False) -> Response:
        """One request within the token's budget; 401 and 429 are raised for the batch.
        With a refresh token, a 401 gets one refresh and one more try."""
        self.limits.check_daily()
        if self.budget is not None:
            self.budget.check(self.account)
        token = await self._token()
        resp = await self._send(path, body, search, token)
        if resp.status == 401 and self.creds.refresh is not None:
            token = await self.tokens.after_401(self.session, self.creds.refresh, token)
            resp = await self._send(path, body, search, token)
        usage = self.limits.observe(resp.headers)
        if self.budget is not None:
            self.budget.spend(
                self.account,
                header_number(resp.headers, "X-HubSpot-RateLimit-Daily"),
                header_number(resp.headers, "X-HubSpot-RateLimit-Daily-Remaining"),
            )
        if usage is not None:
            self.metrics.api_usage.labels(NAME).set(usage)
        if resp.status == 401:
            raise AuthFailed(message_of(resp.body, "HubSpot refused the token"), http_status=401)
        if resp.status == 429:
            raise self.limits.rate_limited(resp.headers, resp.body, search)
        return resp
