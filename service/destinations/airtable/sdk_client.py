"""The same three calls through pyairtable, the SDK, run in worker threads.

Kept for comparison (`bench/airtable_client.py`) and as a fallback (option
`client: "sdk"`); the default hot path is `client.py`, whose `RecordsApi` this
module's `SdkClient` provides too. pyairtable's own retry
(urllib3 `Retry`, 5 tries with short backoff on 429) would hammer a base that
is in Airtable's 30-second penalty, so it is switched off: errors go through
the same `classify` and the pipeline's retry policy instead.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from pyairtable import Api
from pyairtable.formulas import Formula
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

from service.destinations.airtable.client import Credentials
from service.destinations.airtable.errors import (
    PENALTY_S,
    classify,
    created_ids,
    matched,
    records_of,
)
from service.destinations.airtable.plan import DESTINATION, match_formula
from service.destinations.http import outcome_label, ssl_context, tls_message
from service.errors import RateLimited, TlsError, TransientError
from service.metrics import Metrics
from service.ratelimit import CompletionWindow

T = TypeVar("T")


class _TrustAdapter(HTTPAdapter):
    """Verifies TLS with the service's own context (system CAs plus DESTINATION_CA_FILE),
    as the aiohttp path does. `session.verify` alone is not enough: requests lets a
    REQUESTS_CA_BUNDLE in the environment override it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if verify is not False:
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = self._context
        return host, pool


def sdk_api(secret: Credentials, ca_file: Path | None, timeout_s: float) -> Api:
    """`Api(api_key, endpoint_url=base_url)` without retries, trusting `DESTINATION_CA_FILE`."""
    seconds = max(1, int(timeout_s))
    api = Api(
        secret.api_key.get_secret_value(),
        endpoint_url=secret.base_url,
        retry_strategy=None,
        timeout=(seconds, seconds),
    )
    api.session.mount("https://", _TrustAdapter(ssl_context(ca_file)))
    return api


class SdkClient:
    """Same interface as `AirtableClient`; each call is one `asyncio.to_thread`."""

    def __init__(
        self,
        api: Api,
        pacer: CompletionWindow,
        metrics: Metrics,
        base_id: str,
        penalty_s: float = PENALTY_S,
    ) -> None:
        self._api, self._pacer, self._metrics = api, pacer, metrics
        self._base_id, self._penalty_s = base_id, penalty_s

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if (wait := self._pacer.blocked_for) > 0:
            raise RateLimited("Airtable base is in its rate-limit penalty", retry_after=wait)
        requests_total = self._metrics.destination_requests
        try:
            async with self._pacer.slot():
                result = await asyncio.to_thread(call, *args, **kwargs)
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 500
            requests_total.labels(DESTINATION, outcome_label(status)).inc()
            try:
                body = response.json() if response is not None else None
            except ValueError:
                body = None
            headers = response.headers if response is not None else {}
            error = classify(status, body, headers, self._penalty_s)
            if isinstance(error, RateLimited):
                self._metrics.rate_limited.labels(DESTINATION).inc()
                self._pacer.penalize(error.retry_after)
            raise error from None
        except requests.exceptions.SSLError as exc:
            requests_total.labels(DESTINATION, "tls_error").inc()
            raise TlsError(tls_message(DESTINATION, exc)) from None
        except requests.Timeout:
            requests_total.labels(DESTINATION, "timeout").inc()
            raise TransientError("airtable request timed out", code="timeout") from None
        except requests.RequestException as exc:
            requests_total.labels(DESTINATION, "connection_error").inc()
            message = f"airtable connection failed: {type(exc).__name__}"
            raise TransientError(message, code="connection_error") from None
        requests_total.labels(DESTINATION, "ok").inc()
        return result

    async def update(self, table: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sdk_table = self._api.table(self._base_id, table)
        return records_of({"records": await self._run(sdk_table.batch_update, records)})

    async def upsert(
        self, table: str, merge_on: str, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], set[str]]:
        sdk_table = self._api.table(self._base_id, table)
        result: Any = await self._run(sdk_table.batch_upsert, records, [merge_on])
        return records_of(result), created_ids(result)

    async def find(self, table: str, column: str, values: list[str]) -> dict[str, list[str]]:
        sdk_table = self._api.table(self._base_id, table)
        formula = Formula(match_formula(column, values))
        rows = await self._run(sdk_table.all, formula=formula, fields=[column], page_size=100)
        found: dict[str, list[str]] = {}
        for value, rid in matched(records_of({"records": rows}), column):
            found.setdefault(value, []).append(rid)
        return found

    async def read(self, table: str, formula: str, fields: list[str]) -> list[dict[str, Any]]:
        sdk_table = self._api.table(self._base_id, table)
        rows = await self._run(
            sdk_table.all, formula=Formula(formula), fields=fields, page_size=100
        )
        return records_of({"records": rows})
