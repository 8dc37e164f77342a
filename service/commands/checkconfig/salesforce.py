"""Salesforce: the answers of `GET /services/data/vXX.X/sobjects/{Object}/describe`
(read by the destination's `describe`), as check-config's fields.

Used from each field: name, type, updateable, createable, filterable,
picklistValues[].value/active and restrictedPicklist. Only a restricted picklist
refuses a value outside its list; an unrestricted one saves it (as an inactive
value), so it counts as text here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas

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


def schemas(described: Mapping[str, Any]) -> Schemas:
    """Object -> its fields, from each describe answer (None: no such object)."""
    return {obj: None if body is None else parse_describe(body) for obj, body in described.items()}
