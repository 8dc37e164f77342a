"""Access tokens from a refresh token (OAuth 2.0 refresh-token grant), contract §4.

A Salesforce or HubSpot credentials file may hold `refresh_token`, `client_id`
and `client_secret` instead of (or as well as) an `access_token`. `TokenSource`
gets an access token with the grant, keeps it in memory only (never in a file,
log, topic or error), refreshes it before it expires and once after a 401, and
runs at most one grant at a time per credentials file: concurrent callers share
the one in flight (a shielded task, so one caller's cancellation spares the rest).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from service.destinations.http import bounded_seconds
from service.destinations.idle import IdleMap
from service.errors import AuthFailed, CredentialsUnavailable, TransientError
from service.metrics import Metrics
from service.redact import redact, register_secret

REFRESH_KEYS = ("refresh_token", "client_id", "client_secret")
TOKEN_IDLE_S = 86_400.0
MAX_LIFETIME_S = 86_400.0  # an expires_in longer than a day is not believed


def secret_text(value: object) -> str | None:
    """A credentials value as text: a plain str, or a SecretStr-like wrapper."""
    reveal = getattr(value, "get_secret_value", None)
    if callable(reveal):
        value = reveal()
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class RefreshSpec:
    """How to get access tokens for one credentials file."""

    token_url: str
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    owner: str = ""  # the credentials file (account) it belongs to; "" : the grant's key

    @property
    def key(self) -> str:
        """Identifies the file's grant without holding any part of a secret."""
        raw = "\0".join((self.token_url, self.client_id, self.refresh_token))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def account(self) -> str:
        """Stable across rotations of the refresh token: one held token per file."""
        return self.owner or self.key

    @classmethod
    def parse(
        cls, data: Mapping[str, object], token_url: str, who: str, owner: str = ""
    ) -> RefreshSpec | None:
        """None when the file has no refresh token; all three keys or none. `owner`
        names the credentials file, so its tokens replace each other when rotated."""
        values = {k: secret_text(data.get(k)) for k in REFRESH_KEYS}
        if not any(values.values()):
            return None
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise CredentialsUnavailable(f"{who} secret has a refresh_token but no {missing[0]}")
        if urlsplit(token_url).scheme != "https" or not urlsplit(token_url).hostname:
            raise CredentialsUnavailable(f"{who} token_url must be an https:// URL")
        spec = cls(token_url, str(values["client_id"]), str(values["client_secret"]),
                   str(values["refresh_token"]), owner)  # fmt: skip
        for name, value in values.items():
            register_secret(str(value), owner=f"oauth:{spec.account}:{name}")
        return spec


@dataclass
class _Token:
    grant: str  # RefreshSpec.key of the file's grant it came from
    access: str = field(repr=False)
    refresh: str = field(repr=False)  # the newest refresh token (rotation hands out new ones)
    expires_at: float  # monotonic
    margin_s: float = 0.0  # refresh this long before expiry


class TokenSource:
    def __init__(
        self,
        destination: str,
        metrics: Metrics,
        *,
        default_lifetime_s: float,
        margin_s: float = 60.0,
        max_accounts: int = 10_000,
    ) -> None:
        self.destination = destination
        self.default_lifetime_s = default_lifetime_s  # when the answer has no expires_in
        self.margin_s = margin_s
        # One held token per credentials file (not per refresh token: rotation would
        # add one each time); files unused for a day are forgotten.
        self._tokens: IdleMap[str, _Token] = IdleMap(idle_s=TOKEN_IDLE_S, max_entries=max_accounts)
        self._inflight: dict[str, asyncio.Task[str]] = {}
        self._outcomes = metrics.token_refreshes

    def _held(self, spec: RefreshSpec) -> _Token | None:
        """The token got from this file's grant; one from a grant the file no longer
        holds (the operator replaced the refresh token) is dropped."""
        token = self._tokens.get(spec.account)
        if token is not None and token.grant != spec.key:
            self._tokens.pop(spec.account)
            return None
        return token

    def _fresh(self, spec: RefreshSpec) -> str | None:
        token = self._held(spec)
        if token is None:
            return None
        lifetime_left = token.expires_at - monotonic()
        return token.access if lifetime_left > token.margin_s else None

    async def token(
        self, session: aiohttp.ClientSession, spec: RefreshSpec, initial: str | None = None
    ) -> str:
        """A valid access token, refreshed first when it is about to expire. `initial`
        (the file's own access_token) is used until the first grant: its expiry is
        unknown, so it is replaced after a 401."""
        if initial is not None and self._held(spec) is None:
            return initial
        return self._fresh(spec) or await self._refresh(session, spec)

    async def after_401(self, session: aiohttp.ClientSession, spec: RefreshSpec, used: str) -> str:
        """The token to retry with after `used` was refused: a newer one when another
        request already refreshed it, else a new grant."""
        current = self._held(spec)
        if current is not None and current.access != used and self._fresh(spec):
            return current.access
        if current is not None:
            current.expires_at = 0.0  # refused: never hand it out again
        return await self._refresh(session, spec)

    async def _refresh(self, session: aiohttp.ClientSession, spec: RefreshSpec) -> str:
        task = self._inflight.get(spec.key)
        if task is None:
            task = asyncio.create_task(self._grant(session, spec))
            self._inflight[spec.key] = task

            def forget(done: asyncio.Task[str], key: str = spec.key) -> None:
                if self._inflight.get(key) is done:
                    del self._inflight[key]
                if not done.cancelled():
                    done.exception()  # retrieved: a failed grant is raised to its waiters

            task.add_done_callback(forget)
        return await asyncio.shield(task)

    async def _grant(self, session: aiohttp.ClientSession, spec: RefreshSpec) -> str:
        held = self._held(spec)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": held.refresh if held else spec.refresh_token,
            "client_id": spec.client_id,
            "client_secret": spec.client_secret,
        }
        try:
            async with session.post(
                spec.token_url, data=form, headers={"Accept": "application/json"}
            ) as resp:
                status, raw = resp.status, await resp.read()
        except TimeoutError:
            self._outcomes.labels(self.destination, "failed").inc()
            raise TransientError(
                f"{self.destination} token refresh timed out", code="timeout"
            ) from None
        except aiohttp.ClientError as exc:
            self._outcomes.labels(self.destination, "failed").inc()
            raise TransientError(
                f"{self.destination} token refresh failed: {type(exc).__name__}",
                code="connection_error",
            ) from None
        try:
            body: Any = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        access = secret_text(body.get("access_token")) if isinstance(body, dict) else None
        if status != 200 or access is None:
            self._outcomes.labels(self.destination, "failed").inc()
            raise _grant_error(self.destination, status, body)
        # From here on redact() hides it everywhere; the file's older tokens make room.
        register_secret(access, owner=f"oauth:{spec.account}:access_token")
        rotated = secret_text(body.get("refresh_token"))
        if rotated is not None:
            register_secret(rotated, owner=f"oauth:{spec.account}:refresh_token")
        lifetime = bounded_seconds(body.get("expires_in"), 0.0, cap=MAX_LIFETIME_S)
        if lifetime <= 0:
            lifetime = self.default_lifetime_s
        margin = min(self.margin_s, lifetime / 10)  # a short-lived token is still used
        self._tokens.put(
            spec.account,
            _Token(spec.key, access, rotated or form["refresh_token"], monotonic() + lifetime,
                   margin),
        )  # fmt: skip
        self._outcomes.labels(self.destination, "ok").inc()
        return access


def _grant_error(destination: str, status: int, body: Any) -> AuthFailed | TransientError:
    """400/401 (invalid_grant, a revoked app): permanent; anything else: try again later."""
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("error") or body.get("status") or "")
    text = redact(f"{destination} token refresh refused (HTTP {status} {detail})".strip())[:300]
    if status in (400, 401, 403):
        return AuthFailed(text, code="token_refresh_failed", http_status=status)
    return TransientError(text, code="token_refresh_failed", http_status=status)
