"""HubSpot: `GET /crm/v3/properties/{objectType}`, read-only.

Used from each property: name, type, fieldType, options[].value and
modificationMetadata.readOnlyValue. An enumeration takes only its option values
(several, `;`-separated, when fieldType is checkbox).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.commands.checkconfig.fetch import Reader
from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas
from service.destinations.hubspot.client import parse_credentials

KINDS = {"string": Kind.TEXT, "phone_number": Kind.TEXT, "enumeration": Kind.CHOICE,
         "date": Kind.DATE, "datetime": Kind.DATETIME, "number": Kind.NUMBER}  # fmt: skip


def parse_property(raw: Mapping[str, Any]) -> FieldInfo:
    kind_name = str(raw.get("type", ""))
    meta = raw.get("modificationMetadata")
    read_only = bool(meta.get("readOnlyValue")) if isinstance(meta, dict) else False
    options = raw.get("options") or []
    choices = tuple(str(o["value"]) for o in options if isinstance(o, dict) and "value" in o)
    return FieldInfo(
        name=str(raw.get("name")),
        crm_type=kind_name,
        kind=KINDS.get(kind_name, Kind.OTHER),
        updateable=not read_only,
        createable=not read_only,
        choices=choices,
    )


def parse_properties(body: Any) -> ObjectFields:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise ValueError("the properties answer has no results list")
    return {
        str(p["name"]): parse_property(p) for p in results if isinstance(p, dict) and "name" in p
    }


async def read(
    session: aiohttp.ClientSession, data: Mapping[str, Any], objects: set[str]
) -> Schemas:
    creds = parse_credentials(data)
    reader = Reader(session, "hubspot", creds.access_token, creds.refresh, 1800.0)
    out: Schemas = {}
    for obj in sorted(objects):
        body = await reader.get(f"{creds.base_url}/crm/v3/properties/{obj}", missing_ok=True)
        out[obj] = None if body is None else parse_properties(body)
    return out
