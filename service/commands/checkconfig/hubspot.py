"""HubSpot: the answers of `GET /crm/v3/properties/{objectType}` (read by the
destination's `describe`), as check-config's fields.

Used from each property: name, type, fieldType, options[].value and
modificationMetadata.readOnlyValue. An enumeration takes only its option values
(several, `;`-separated, when fieldType is checkbox).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.commands.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas

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


def schemas(described: Mapping[str, Any]) -> Schemas:
    """Object -> its properties, from each answer (None: no such object)."""
    return {
        obj: None if body is None else parse_properties(body) for obj, body in described.items()
    }
