"""Salesforce: `GET /services/data/vXX.X/sobjects/{Object}/describe`, read-only.

Used from each field: name, type, updateable, createable, filterable,
picklistValues[].value/active and restrictedPicklist. Only a restricted picklist
refuses a value outside its list; an unrestricted one saves it (as an inactive
value), so it counts as text here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from service.commands.checkconfig.fetch import Reader
from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas
from service.destinations.salesforce.client import Credentials

TEXT = frozenset({"string", "textarea", "url", "phone", "encryptedstring", "combobox"})
KINDS = {"date": Kind.DATE, "datetime": Kind.DATETIME, "email": Kind.EMAIL,
         "double": Kind.NUMBER, "int": Kind.NUMBER, "long": Kind.NUMBER,
         "currency": Kind.NUMBER, "percent": Kind.NUMBER}  # fmt: skip


def parse_field(raw: Mapping[str, Any]) -> FieldInfo:
    kind_name = str(raw.get("type", ""))
    choices: tuple[str, ...] = ()
    if kind_name in ("picklist", "multipicklist"):
        restricted = bool(raw.get("restrictedPicklist"))
        kind = Kind.CHOICE if restricted else Kind.TEXT
        values = raw.get("picklistValues") or []
        choices = tuple(
            str(v["value"]) for v in values if isinstance(v, dict) and v.get("active", True)
        )
    else:
        kind = Kind.TEXT if kind_name in TEXT else KINDS.get(kind_name, Kind.OTHER)
    return FieldInfo(
        name=str(raw.get("name")),
        crm_type=kind_name,
        kind=kind,
        updateable=bool(raw.get("updateable", False)),
        createable=bool(raw.get("createable", False)),
        choices=choices,
        filterable=bool(raw.get("filterable", True)),
    )


def parse_describe(body: Any) -> ObjectFields:
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list):
        raise ValueError("the describe answer has no fields list")
    return {str(f["name"]): parse_field(f) for f in fields if isinstance(f, dict) and "name" in f}


async def read(
    session: aiohttp.ClientSession, data: Mapping[str, Any], objects: set[str]
) -> Schemas:
    creds = Credentials.parse(data)
    reader = Reader(session, "salesforce", creds.access_token, creds.refresh, 7200.0)
    out: Schemas = {}
    for obj in sorted(objects):
        url = f"{creds.data_url}/sobjects/{quote(obj, safe='')}/describe"
        body = await reader.get(url, missing_ok=True)
        out[obj] = None if body is None else parse_describe(body)
    return out
