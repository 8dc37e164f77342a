"""Airtable: `GET /v0/meta/bases/{baseId}/tables`, read-only (scope schema.bases:read).

One call gives every table: tables[].name and fields[].name/type, with
options.choices[].name for singleSelect and multipleSelects. Computed fields
(formula, rollup, created time, ...) cannot be written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.commands.checkconfig.fetch import Reader
from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas
from service.credentials import reveal
from service.destinations.airtable.client import parse_credentials

KINDS = {"singleLineText": Kind.TEXT, "multilineText": Kind.TEXT, "richText": Kind.TEXT,
         "url": Kind.TEXT, "phoneNumber": Kind.TEXT, "singleSelect": Kind.CHOICE,
         "multipleSelects": Kind.CHOICE, "date": Kind.DATE, "dateTime": Kind.DATETIME,
         "number": Kind.NUMBER, "currency": Kind.NUMBER, "percent": Kind.NUMBER,
         "email": Kind.EMAIL}  # fmt: skip
COMPUTED = frozenset({"formula", "rollup", "count", "lookup", "multipleLookupValues",
                      "autoNumber", "createdTime", "lastModifiedTime", "createdBy",
                      "lastModifiedBy", "button", "aiText"})  # fmt: skip


def parse_field(raw: Mapping[str, Any]) -> FieldInfo:
    kind_name = str(raw.get("type", ""))
    options = raw.get("options")
    listed = options.get("choices") if isinstance(options, dict) else None
    choices = tuple(str(c["name"]) for c in listed or [] if isinstance(c, dict) and "name" in c)
    writable = kind_name not in COMPUTED
    return FieldInfo(
        name=str(raw.get("name")),
        crm_type=kind_name,
        kind=KINDS.get(kind_name, Kind.OTHER),
        updateable=writable,
        createable=writable,
        choices=choices,
        takes_list=kind_name == "multipleSelects",
    )


def parse_tables(body: Any) -> dict[str, ObjectFields]:
    tables = body.get("tables") if isinstance(body, dict) else None
    if not isinstance(tables, list):
        raise ValueError("the base schema answer has no tables list")
    return {
        str(t["name"]): {
            str(f["name"]): parse_field(f)
            for f in t.get("fields") or []
            if isinstance(f, dict) and "name" in f
        }
        for t in tables
        if isinstance(t, dict) and "name" in t
    }


async def read(
    session: aiohttp.ClientSession, data: Mapping[str, Any], objects: set[str]
) -> Schemas:
    secret = parse_credentials(data)
    reader = Reader(session, "airtable", reveal(secret.api_key), None, 0.0)
    body = await reader.get(f"{secret.base_url}/v0/meta/bases/{secret.base_id}/tables")
    tables = parse_tables(body)
    return {table: tables.get(table) for table in objects}
