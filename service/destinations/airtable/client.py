"""The hot path: Airtable's REST API over the shared aiohttp session.

Same paths and bodies as pyairtable (`Table.batch_update`, `Table.batch_upsert`,
`Table.all(formula=...)`), without a thread per call. Every request holds a slot
of the base's request window (service/ratelimit.py); a 429 puts the whole base
into its penalty window, and while it lasts nothing is sent: callers get `RateLimited` at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from service.credentials import reveal
from service.destinations.airtable.errors import (
    PENALTY_S,
    classify,
    created_ids,
    matched,
    records_of,
)
from service.destinations.airtable.plan import DESTINATION, match_formula
from service.destinations.answers import unreadable
from service.destinations.http import send
from service.errors import CredentialsUnavailable, RateLimited
from service.metrics import Metrics
from service.ratelimit import CompletionWindow
from service.redact import register_secret

DEFAULT_BASE_URL = "https://api.airtable.com"
MAX_PAGES = 50  # 100 records a page; a lookup asks for at most 100 values


@dataclass(frozen=True)
class Credentials:
    """The secret file: api_key, base_id, and base_url (optional)."""

    api_key: SecretStr = field(repr=False)
    base_id: str
    base_url: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Credentials:
        """The secret file's fields, each checked for its type; messages never echo values."""
        api_key, base_id = reveal(data.get("api_key")), data.get("base_id")
        base_url = data.get("base_url") or DEFAULT_BASE_URL
        if api_key is None:
            raise CredentialsUnavailable("airtable secret has no api_key")
        if not isinstance(base_id, str) or not base_id:
            raise CredentialsUnavailable("airtable secret has no base_id")
        if not isinstance(base_url, str) or not base_url.startswith("https://"):
            raise CredentialsUnavailable("airtable secret base_url must be an https:// URL")
        register_secret(api_key)
        return cls(SecretStr(api_key), base_id, base_url.rstrip("/"))


class RecordsApi(Protocol):
    """What the writer needs; `AirtableClient` (aiohttp) and `sdk_client.SdkClient` provide it."""

    async def update(self, table: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    async def upsert(
        self, table: str, merge_on: str, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], set[str]]: ...

    async def find(self, table: str, column: str, values: list[str]) -> dict[str, list[str]]: ...

    async def read(self, table: str, formula: str, fields: list[str]) -> list[dict[str, Any]]: ...


class AirtableClient:
    """Calls for one base, paced by that base's pacer."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        pacer: CompletionWindow,
        metrics: Metrics,
        secret: Credentials,
        penalty_s: float = PENALTY_S,
    ) -> None:
        self._session, self._pacer, self._metrics = session, pacer, metrics
        self._root = f"{secret.base_url}/v0/{quote(secret.base_id, safe='')}"
        self._headers = {"Authorization": f"Bearer {secret.api_key.get_secret_value()}"}
        self._penalty_s = penalty_s

    def _url(self, table: str) -> str:
        return f"{self._root}/{quote(table, safe='')}"

    async def _call(
        self,
        method: str,
        table: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        record: str | None = None,
    ) -> Any:
        if (wait := self._pacer.blocked_for) > 0:
            raise RateLimited("Airtable base is in its rate-limit penalty", retry_after=wait)
        async with self._pacer.slot():
            response = await send(
                self._session,
                method,
                self._url(table) + (f"/{quote(record, safe='')}" if record else ""),
                destination=DESTINATION,
                metrics=self._metrics,
                headers=self._headers,
                json=json,
                params=params,
            )
        if response.ok:
            return response.body
        error = classify(response.status, response.body, response.headers, self._penalty_s)
        if isinstance(error, RateLimited):
            self._pacer.penalize(error.retry_after)  # every writer to this base waits
        raise error

    async def update(self, table: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PATCH up to 10 `{"id", "fields"}`; returns the records in request order."""
        return records_of(await self._call("PATCH", table, json={"records": records}))

    async def upsert(
        self, table: str, merge_on: str, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], set[str]]:
        """PATCH with performUpsert; returns (records in request order, ids created)."""
        body = {"performUpsert": {"fieldsToMergeOn": [merge_on]}, "records": records}
        answer = await self._call("PATCH", table, json=body)
        return records_of(answer), created_ids(answer)

    async def get(self, table: str, record_id: str) -> dict[str, Any]:
        """GET one record (the preview's read-only check of a crm id)."""
        body = await self._call("GET", table, record=record_id)
        return body if isinstance(body, dict) else {}

    async def find(self, table: str, column: str, values: list[str]) -> dict[str, list[str]]:
        """Record ids whose `column` equals each value (one OR formula, every page)."""
        found: dict[str, list[str]] = defaultdict(list)
        for value, rid in matched(
            await self.read(table, match_formula(column, values), [column]), column
        ):
            found[value].append(rid)
        return found

    async def read(self, table: str, formula: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every record `formula` keeps, with only `fields` (Airtable leaves empty ones out)."""
        params = {"filterByFormula": formula, "fields[]": fields, "pageSize": "100"}
        records: list[dict[str, Any]] = []
        offsets: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await self._call("GET", table, params=params)
            records += records_of(page)
            offset = page.get("offset")
            if offset is None or offset == "":
                return records
            if not isinstance(offset, str) or offset in offsets:
                raise unreadable(DESTINATION, "a list whose offset is not a new cursor")
            offsets.add(offset)
            params = {**params, "offset": offset}
        raise unreadable(DESTINATION, f"a list of more than {MAX_PAGES} pages")
