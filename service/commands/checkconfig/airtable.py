"""Airtable: the tables of `GET /v0/meta/bases/{baseId}/tables` (scope
schema.bases:read, read by the destination's `describe`), as check-config's fields.

One call gives every table: tables[].name and fields[].name/type, with
options.choices[].name for singleSelect and multipleSelects. Computed fields
(formula, rollup, created time, ...) cannot be written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas

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


def parse_table(table: Mapping[str, Any]) -> ObjectFields:
    listed = table.get("fields")
    fields = listed if isinstance(listed, list) else []
    return {str(f["name"]): parse_field(f) for f in fields if isinstance(f, dict) and "name" in f}


def parse_tables(body: Any) -> dict[str, ObjectFields]:
    tables = body.get("tables") if isinstance(body, dict) else None
    if not isinstance(tables, list):
        raise ValueError("the base schema answer has no tables list")
    return {str(t["name"]): parse_table(t) for t in tables if isinstance(t, dict) and "name" in t}


def schemas(described: Mapping[str, Any]) -> Schemas:
    """Table -> its fields, from each table's entry (None: no such table in the base)."""
    return {
        table: None if entry is None else parse_table(entry) for table, entry in described.items()
    }
