"""The bodies of the chaos faults (devkit/sandboxes/chaos.py), in each CRM's dialect:
its 5xx and 429 answers, and its 2xx answers with `null` where a value belongs."""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiohttp import web


def json_response(body: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_body(dialect: str, status: int) -> Any:
    if dialect == "salesforce":
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        return [{"message": "An unexpected error occurred (chaos)", "errorCode": code}]
    if dialect == "hubspot":
        return {
            "status": "error",
            "message": "internal error (chaos)",
            "correlationId": "00000000-0000-0000-0000-000000000000",
            "category": "INTERNAL_ERROR",
        }
    kind = "SERVICE_UNAVAILABLE" if status == 503 else "SERVER_ERROR"
    return {"error": {"type": kind, "message": "Server error (chaos)"}}


def limit_body(dialect: str, rng: random.Random) -> Any:
    if dialect == "salesforce":  # a concurrent-request limit, never the daily allocation
        return [
            {
                "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ]
    if dialect == "hubspot":  # never DAILY: that one rightly holds the account until midnight
        policy = rng.choice(("TEN_SECONDLY_ROLLING", "SECONDLY"))
        return {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "00000000-0000-0000-0000-000000000000",
            "policyName": policy,
        }
    return {"error": {"type": "TOO_MANY_REQUESTS", "message": "Rate limit exceeded (chaos)"}}


def nulled(dialect: str, raw: bytes) -> bytes:
    """Salesforce `{"success": false, "errors": null}` results (a query's records
    null), Airtable records with `"fields": null`, HubSpot `"errors": 1`."""
    data = orjson.loads(raw)
    if dialect == "salesforce":
        if isinstance(data, list):
            data = [{"success": False, "errors": None} for _ in data]
        elif isinstance(data, dict) and "records" in data:
            data["records"] = None
    elif dialect == "airtable":
        records = data.get("records") if isinstance(data, dict) else None
        for record in records if isinstance(records, list) else [data]:
            if isinstance(record, dict) and "fields" in record:
                record["fields"] = None
    elif isinstance(data, dict):
        data["errors"] = 1
    return orjson.dumps(data)
