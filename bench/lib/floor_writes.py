"""The floor's requests: one write per batch of an API's maximum size, built as
pure data (the fields the fleet's configs map, devkit/factories.py DEFAULT_TARGETS).

Salesforce creates Leads (composite/sobjects POST, 200 a call), HubSpot upserts
contacts by email (batch/upsert, 100 a call), Airtable upserts on Email (PATCH
with performUpsert, 10 a call): each writes a lead in one request, with no lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

SALESFORCE_MAX, HUBSPOT_MAX, AIRTABLE_MAX = 200, 100, 10


@dataclass(frozen=True)
class Write:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _json_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def salesforce(creds: dict[str, Any], events: list[dict[str, Any]]) -> list[Write]:
    url = f"{creds['instance_url']}/services/data/v{creds['api_version']}/composite/sobjects"
    headers = {**_json_headers(creds["access_token"]), "Sforce-Auto-Assign": "FALSE"}
    writes = []
    for part in chunks(events, SALESFORCE_MAX):
        records = [
            {
                "attributes": {"type": "Lead"},
                "Email": e["lead"]["email"],
                "LastName": e["lead"]["last_name"],
                "Company": e["lead"]["company"],
                "TS_Score__c": e["evaluation"]["score"],
                "TS_Reasoning__c": e["evaluation"]["reasoning"],
                "TS_Evaluated_At__c": e["evaluation"]["evaluated_at"],
            }
            for e in part
        ]
        body = orjson.dumps({"allOrNone": False, "records": records})
        writes.append(Write("POST", url, headers, body))
    return writes


def hubspot(creds: dict[str, Any], events: list[dict[str, Any]]) -> list[Write]:
    url = f"{creds['base_url']}/crm/v3/objects/contacts/batch/upsert"
    writes = []
    for part in chunks(events, HUBSPOT_MAX):
        inputs = [
            {
                "idProperty": "email",
                "id": e["lead"]["email"],
                "properties": {
                    "ts_score": e["evaluation"]["score"],
                    "ts_reasoning": e["evaluation"]["reasoning"],
                    "ts_evaluated_at": e["evaluation"]["evaluated_at"],
                },
            }
            for e in part
        ]
        body = orjson.dumps({"inputs": inputs})
        writes.append(Write("POST", url, _json_headers(creds["access_token"]), body))
    return writes


def airtable(creds: dict[str, Any], events: list[dict[str, Any]]) -> list[Write]:
    url = f"{creds['base_url']}/v0/{creds['base_id']}/Contacts"
    writes = []
    for part in chunks(events, AIRTABLE_MAX):
        records = [
            {
                "fields": {
                    "Email": e["lead"]["email"],
                    "TS Score": e["evaluation"]["score"],
                    "TS Reasoning": e["evaluation"]["reasoning"],
                    "TS Evaluated At": e["evaluation"]["evaluated_at"],
                }
            }
            for e in part
        ]
        body = orjson.dumps({"performUpsert": {"fieldsToMergeOn": ["Email"]}, "records": records})
        writes.append(Write("PATCH", url, _json_headers(creds["api_key"]), body))
    return writes


WRITES: dict[str, Callable[[dict[str, Any], list[dict[str, Any]]], list[Write]]] = {
    "salesforce": salesforce,
    "hubspot": hubspot,
    "airtable": airtable,
}
