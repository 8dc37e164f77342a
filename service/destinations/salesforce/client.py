"""The hot path's REST client: aiohttp on the same paths simple-salesforce uses.

`GET /services/data/vXX.X/query?q=...` (following `nextRecordsUrl`) and
`PATCH|POST /services/data/vXX.X/composite/sobjects` (sObject Collections,
`allOrNone: false`, at most 200 records). Every answer's `Sforce-Limit-Info`
feeds the API-usage gauge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from service.destinations.answers import unreadable
from service.destinations.budget import DailyBudget
from service.destinations.http import Response, send
from service.destinations.idle import IdleMap
from service.destinations.oauth import RefreshSpec, TokenSource, secret_text
from service.destinations.salesforce.errors import request_error
from service.destinations.salesforce.pages import Pager
from service.errors import CredentialsUnavailable, DeliveryError
from service.metrics import Metrics

NAME = "salesforce"
COLLECTION_LIMIT = 200
_VERSION = re.compile(r"\d{2,3}\.\d")
_USAGE = re.compile(r"api-usage=(\d{1,12})/(\d{1,12})(?!\d)")  # longer: not a number we use


@dataclass(frozen=True)
class Credentials:
    """The secret file (contract §4): instance_url, api_version, and an access_token
    and/or refresh_token, client_id, client_secret (token_url optional)."""

    instance_url: str
    access_token: str | None = field(repr=False)
    api_version: str = "62.0"
    refresh: RefreshSpec | None = None
    account: str = ""  # budget, usage and token key: the credentials file, else the instance

    @classmethod
    def parse(cls, data: Mapping[str, object], account: str = "") -> Credentials:
        """The secret file's fields, each checked for its type. `account` names the
        credentials file (config.integration.credentials_ref): orgs on one instance
        URL each keep their own budget share and tokens."""
        url, token = data.get("instance_url"), secret_text(data.get("access_token"))
        version = str(data.get("api_version") or "62.0").removeprefix("v")
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme != "https"
            or not urlsplit(url).hostname
        ):
            raise CredentialsUnavailable("salesforce secret needs an https instance_url")
        url = url.rstrip("/")
        token_url = data.get("token_url") or f"{url}/services/oauth2/token"
        refresh = RefreshSpec.parse(data, str(token_url), NAME, owner=account)
        if token is None and refresh is None:
            raise CredentialsUnavailable("salesforce secret has no access_token or refresh_token")
        if not _VERSION.fullmatch(version):
            raise CredentialsUnavailable(f"salesforce api_version {version!r} is not like 62.0")
        return cls(url, token, version, refresh, account or url)

    @property
    def data_url(self) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}"


class UsageGauge:
    """`api_usage_ratio{destination}`: the highest share used among the orgs seen.

    Labels may not hold org ids, so the gauge shows the org closest to its limit.
    An org not heard from for a day no longer counts (nor takes memory).
    """

    def __init__(self, metrics: Metrics) -> None:
        self._gauge = metrics.api_usage.labels(NAME)
        self._ratios: IdleMap[str, float] = IdleMap(idle_s=86_400.0, max_entries=100_000)

    def observe(self, account: str, header: str | None) -> int | None:
        """Record the org's usage; its daily limit, when the header says it."""
        match = _USAGE.search(header or "") if isinstance(header, str) else None
        if not match:
            return None
        used, limit = int(match.group(1)), int(match.group(2))
        if limit <= 0:
            return None
        self._ratios.put(account, min(used / limit, 10.0))  # 10: far past any real overdraft
        self._gauge.set(max(self._ratios.values()))
        return limit


class RestClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        *,
        quota_retry_s: float,
        limit_retry_s: float,
        token_lifetime_s: float = 3600.0,
    ) -> None:
        self.session = session
        self.metrics = metrics
        self.usage = UsageGauge(metrics)
        # Salesforce's token answer has no expires_in: assume the session lasts this long.
        self.tokens = TokenSource(NAME, metrics, default_lifetime_s=token_lifetime_s)
        self.budget = DailyBudget(NAME, metrics)  # keyed by Credentials.account: one per org
        self.quota_retry_s = quota_retry_s
        self.limit_retry_s = limit_retry_s

    async def _call(
        self,
        creds: Credentials,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Any = None,
        extra: Mapping[str, str] | None = None,
    ) -> Response:
        self.budget.check(creds.account)
        token = await self._token(creds)
        headers = {"Accept": "application/json", **(extra or {})}
        resp = await send(
            self.session, method, url, destination=NAME, metrics=self.metrics,
            headers={**headers, "Authorization": f"Bearer {token}"}, json=json, params=params,
        )  # fmt: skip
        if resp.status == 401 and creds.refresh is not None:  # expired: refresh once, retry
            token = await self.tokens.after_401(self.session, creds.refresh, token)
            resp = await send(
                self.session, method, url, destination=NAME, metrics=self.metrics,
                headers={**headers, "Authorization": f"Bearer {token}"}, json=json, params=params,
            )  # fmt: skip
        limit = self.usage.observe(creds.account, resp.headers.get("Sforce-Limit-Info"))
        self.budget.spend(creds.account, limit)
        if resp.ok:
            return resp
        error = request_error(
            resp.status,
            resp.body,
            quota_retry_s=self.quota_retry_s,
            limit_retry_s=self.limit_retry_s,
        )
        if error.code == "request_limit_exceeded":  # Salesforce says 403, not 429
            self.metrics.rate_limited.labels(NAME).inc()
        raise error

    async def _token(self, creds: Credentials) -> str:
        if creds.refresh is None:
            assert creds.access_token is not None  # parse() guarantees one of the two
            return creds.access_token
        return await self.tokens.token(self.session, creds.refresh, creds.access_token)

    async def query(self, creds: Credentials, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query, following `nextRecordsUrl` pages (see pages.py:
        only on this instance, each cursor once, at most MAX_PAGES)."""
        resp = await self._call(creds, "GET", f"{creds.data_url}/query", params={"q": soql})
        pager = Pager()
        while (path := pager.add(resp.body)) is not None:
            resp = await self._call(creds, "GET", creds.instance_url + path)
        return pager.records

    async def collection(
        self,
        creds: Credentials,
        method: str,
        records: list[dict[str, Any]],
        *,
        auto_assign: bool = False,
        allow_save: bool = False,
    ) -> list[dict[str, Any]]:
        """One sObject Collections call; SaveResults in request order.

        `Sforce-Auto-Assign` defaults to TRUE when absent, which would let the org's
        assignment rules reassign every Lead (and Account) we touch: always say it.
        `allow_save` (on_duplicate: allow) saves past duplicate rules whose action is
        "allow" (with an alert); without it the org's rules block as configured.
        """
        if not 0 < len(records) <= COLLECTION_LIMIT:
            raise ValueError(f"a collection takes 1..{COLLECTION_LIMIT} records")
        body = {"allOrNone": False, "records": records}
        headers = {"Sforce-Auto-Assign": "TRUE" if auto_assign else "FALSE"}
        if allow_save:
            headers["Sforce-Duplicate-Rule-Header"] = "allowSave=true"
        url = f"{creds.data_url}/composite/sobjects"
        resp = await self._call(creds, method, url, json=body, extra=headers)
        results = resp.body
        if not isinstance(results, list) or len(results) != len(records):
            raise unreadable(NAME, "a collection call without one result per record")
        return results


def is_batch_error(error: DeliveryError) -> bool:
    """Errors that concern the whole org, not the records of one request."""
    return error.code in (
        "auth_failed",
        "token_refresh_failed",
        "request_limit_exceeded",
        "quota_exhausted",
        "quota_budget_exhausted",
    )
