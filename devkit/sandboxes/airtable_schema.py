"""The Airtable sandbox's base schema: `GET /v0/meta/bases/{baseId}/tables`.

Each table and field gets a stable id (`tbl...`, `fld...`, `sel...` from its name)
and the documented Field model: `type`, and `options` for the types that have
them (singleSelect/multipleSelects `choices[].id/name/color`, number `precision`,
date `dateFormat`, dateTime `dateFormat`/`timeFormat`/`timeZone`, checkbox
`color`/`icon`). pyairtable's `Api.base(id).schema()` parses it unchanged.

Computed field types (formula, rollup, created time, ...) cannot be written:
Airtable answers 422 INVALID_VALUE_FOR_COLUMN "Field "X" cannot accept a value
because the field is computed".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

COMPUTED = frozenset({"formula", "rollup", "count", "lookup", "multipleLookupValues",
                      "autoNumber", "createdTime", "lastModifiedTime", "createdBy",
                      "lastModifiedBy", "button", "aiText"})  # fmt: skip
_DATE_FORMAT = {"format": "YYYY-MM-DD", "name": "iso"}
_DATE_TIME = {
    "dateFormat": _DATE_FORMAT,
    "timeFormat": {"format": "HH:mm", "name": "24hour"},
    "timeZone": "utc",
}


class ColumnLike(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def choices(self) -> tuple[str, ...]: ...


def stable_id(prefix: str, *parts: str) -> str:
    """`prefix` + 14 characters derived from the names: the same on every run."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return prefix + "".join(c for c in digest if c.isalnum())[:14]


def options(table: str, name: str, column: ColumnLike) -> dict[str, Any] | None:
    kind = column.type
    if kind in ("singleSelect", "multipleSelects"):
        return {
            "choices": [
                {"id": stable_id("sel", table, name, choice), "name": choice, "color": "blueLight2"}
                for choice in column.choices
            ]
        }
    if kind in ("number", "currency", "percent"):
        return {"precision": 0} if kind != "currency" else {"precision": 2, "symbol": "$"}
    if kind == "date":
        return {"dateFormat": _DATE_FORMAT}
    if kind == "dateTime":
        return _DATE_TIME
    if kind in ("createdTime", "lastModifiedTime"):  # computed: the options hold the result
        result = {"type": "dateTime", "options": _DATE_TIME}
        return {"result": result} if kind == "createdTime" else {"isValid": True, "result": result}
    if kind == "checkbox":
        return {"color": "greenBright", "icon": "check"}
    return None


def table_schema(table: str, columns: Mapping[str, ColumnLike]) -> dict[str, Any]:
    fields = []
    for name, column in columns.items():
        model: dict[str, Any] = {
            "id": stable_id("fld", table, name),
            "name": name,
            "type": column.type,
        }
        extra = options(table, name, column)
        if extra is not None:
            model["options"] = extra
        fields.append(model)
    table_id = stable_id("tbl", table)
    return {
        "id": table_id,
        "name": table,
        "primaryFieldId": fields[0]["id"] if fields else stable_id("fld", table, ""),
        "fields": fields,
        "views": [{"id": stable_id("viw", table), "name": "Grid view", "type": "grid"}],
    }


def base_schema(tables: Mapping[str, Mapping[str, ColumnLike]]) -> dict[str, Any]:
    return {"tables": [table_schema(name, columns) for name, columns in tables.items()]}


def refusal(name: str, column: ColumnLike, value: Any) -> tuple[str, str] | None:
    """(type, message) for a value Airtable refuses beyond what `_valid` checks."""
    if column.type in COMPUTED:
        return (
            "INVALID_VALUE_FOR_COLUMN",
            f'Field "{name}" cannot accept a value because the field is computed',
        )
    if column.type == "multipleSelects" and isinstance(value, list):
        bad = next((v for v in value if v not in column.choices), None)
        if bad is not None:
            return (
                "INVALID_MULTIPLE_CHOICE_OPTIONS",
                f'Insufficient permissions to create new select option ""{bad}""',
            )
    return None
