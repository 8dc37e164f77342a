"""`preview --lookup`: the records an event would match now, with read-only calls only.

Salesforce: SOQL queries (GET). HubSpot: batch/read and search (POSTs that read).
Airtable: list with a formula, or GET one record. Credentials come from
`$SECRETS_DIR/{credentials_ref}.json` and `DESTINATION_CA_FILE` is trusted, as
in the service; no Kafka setting is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from service.destinations.airtable.client import AirtableClient, parse_credentials
from service.destinations.answers import contained
from service.destinations.hubspot.client import HubSpotClient
from service.destinations.hubspot.client import parse_credentials as hubspot_credentials
from service.destinations.hubspot.limits import HubSpotOptions, TokenLimits
from service.destinations.hubspot.matching import find_ids
from service.destinations.oauth import TokenSource
from service.destinations.salesforce.client import Credentials, RestClient
from service.destinations.salesforce.soql import OPEN_ONLY, in_queries
from service.errors import DeliveryError
from service.http import new_session
from service.metrics import Metrics
from service.models import DestinationConfig, EvaluationCompleted
from service.ratelimit import CompletionWindow
from service.secrets import SecretStore

DEFAULT_SECRETS_DIR = "/var/run/secrets/trailspark"


async def _salesforce(
    session: aiohttp.ClientSession, data: Mapping[str, Any], obj: str, record: dict[str, Any]
) -> list[str] | dict[str, Any]:
    client = RestClient(session, Metrics(), quota_retry_s=0, limit_retry_s=0)
    creds = Credentials.parse(data)
    if record["by"] == "crm_id":
        also = ["IsConverted", "ConvertedContactId"] if obj == "Lead" else []
        [soql] = in_queries(obj, "Id", [record["id"]], also=also)
        rows = await client.query(creds, soql)
        if rows and rows[0].get("IsConverted"):
            return {"converted": True, "ConvertedContactId": rows[0].get("ConvertedContactId")}
        return [str(r["Id"]) for r in rows]
    queries = in_queries(obj, record["field"], [record["value"]], where=OPEN_ONLY.get(obj))
    return [str(r["Id"]) for q in queries for r in await client.query(creds, q)]


async def _hubspot(
    session: aiohttp.ClientSession, data: Mapping[str, Any], obj: str, record: dict[str, Any]
) -> list[str]:
    metrics = Metrics()
    creds = hubspot_credentials(data)
    tokens = TokenSource("hubspot", metrics, default_lifetime_s=1800.0)
    client = HubSpotClient(session, creds, TokenLimits(HubSpotOptions()), metrics, tokens)
    if record["by"] == "match" and not (obj == "contacts" and record["field"] == "email"):
        found = await find_ids(client, obj, record["field"], [record["value"]], 200)
        hit = found.get(record["value"].lower())
        if isinstance(hit, DeliveryError):
            raise hit
        return [hit] if hit else []
    body: dict[str, Any] = {"inputs": [{"id": record.get("id") or record["value"]}]}
    if record["by"] == "match":
        body["idProperty"] = "email"
    resp = await client.post(f"/crm/v3/objects/{obj}/batch/read", body)
    results = resp.body.get("results") if isinstance(resp.body, dict) else None
    return [str(r["id"]) for r in results or [] if isinstance(r, dict) and "id" in r]


async def _airtable(
    session: aiohttp.ClientSession, data: Mapping[str, Any], table: str, record: dict[str, Any]
) -> list[str]:
    client = AirtableClient(session, CompletionWindow(5, 1.0), Metrics(), parse_credentials(data))
    if record["by"] == "crm_id":
        try:
            return [str((await client.get(table, record["id"])).get("id"))]
        except Exception as exc:  # a deleted record: the write would match by field
            if getattr(getattr(exc, "error", None), "code", "") == "record_deleted":
                return []
            raise
    found = await client.find(table, record["field"], [record["value"]])
    return found.get(record["value"], [])


LOOKUPS = {"salesforce": _salesforce, "hubspot": _hubspot, "airtable": _airtable}


async def look_up(
    configs: list[DestinationConfig], event: EvaluationCompleted, previews: list[dict[str, Any]]
) -> None:
    """Add `matched` (record ids, or what stands in the way) to each previewed record."""
    secrets = SecretStore(Path(os.environ.get("SECRETS_DIR") or DEFAULT_SECRETS_DIR))
    ca = os.environ.get("DESTINATION_CA_FILE")
    session = new_session(Path(ca) if ca else None, 30.0)
    try:
        for config, preview in zip(configs, previews, strict=True):
            data = secrets.load(config)
            lookup = LOOKUPS[config.destination]
            parts = [*preview["targets"]]
            if isinstance(preview.get("propensity"), dict) and "record" in preview["propensity"]:
                parts.append(preview["propensity"])
            for part in parts:
                record = part["record"]
                if record["by"] == "nothing" or record.get("value", "") is None:
                    continue
                try:  # an answer no parser foresaw is bad_response here too
                    part["matched"] = await contained(
                        config.destination, lookup(session, data, part["object"], record)
                    )
                except DeliveryError as exc:
                    part["matched"] = {"error": exc.code, "message": exc.message}
    finally:
        await session.close()
