"""Property definitions for the HubSpot sandbox: types, options, read-only values.

A test declares a property (`HubSpotSandbox(properties={"contacts": {"ts_score":
HsProperty("enumeration", options=("A", "B"))}})` or `hs.define(...)`); the plain
type strings of DEFAULT_PROPERTIES still work. `GET /crm/v3/properties/{objectType}`
lists every property in HubSpot's Property shape (name, label, type, fieldType,
options[].value/label/hidden, modificationMetadata.readOnlyValue, ...).

Refusals, per property, as HubSpot answers them inside a VALIDATION_ERROR:
INVALID_OPTION "{value} was not one of the allowed options: [{labels}]" for an
enumeration, READ_ONLY_VALUE for a read-only one; INVALID_NUMBER for text in a
number property is a sandbox approximation (its wording is not verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The properties HubSpot keeps itself: listed as read-only, refused on write.
SYSTEM = {"hs_object_id": "number", "createdate": "datetime", "lastmodifieddate": "datetime"}
FIELD_TYPES = {"string": "text", "enumeration": "select", "date": "date", "datetime": "date",
               "number": "number", "bool": "booleancheckbox"}  # fmt: skip
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies"}
GROUPS = {"contacts": "contactinformation", "companies": "companyinformation"}


@dataclass(frozen=True)
class HsProperty:
    type: str = "string"
    options: tuple[str, ...] = ()  # enumeration values (label = value)
    read_only: bool = False  # modificationMetadata.readOnlyValue (a calculated property)
    field_type: str | None = None  # "checkbox" makes an enumeration multi-valued
    label: str | None = None
    hubspot_defined: bool = False


def issue(name: str, spec: HsProperty, text: str) -> tuple[str, str] | None:
    """(code, message) when HubSpot refuses `text` for the declared property."""
    if spec.read_only:
        return "READ_ONLY_VALUE", f'"{name}" is a read only property'
    if spec.type == "enumeration" and text:
        chosen = text.split(";") if spec.field_type == "checkbox" else [text]
        bad = next((v for v in chosen if v not in spec.options), None)
        if bad is not None:
            allowed = ", ".join(spec.options)
            return "INVALID_OPTION", f"{bad} was not one of the allowed options: [{allowed}]"
    if spec.type == "number" and text:
        try:
            float(text)
        except ValueError:
            return "INVALID_NUMBER", f"{text} was not a valid number."
    return None


def definition(obj: str, name: str, spec: HsProperty) -> dict[str, Any]:
    """One property as `GET /crm/v3/properties/{objectType}` lists it."""
    stamp = "2024-01-01T00:00:00Z"
    return {
        "name": name,
        "label": spec.label or name.replace("_", " ").title(),
        "type": spec.type,
        "fieldType": spec.field_type or FIELD_TYPES.get(spec.type, "text"),
        "description": "",
        "groupName": GROUPS[obj],
        "options": [
            {"label": v, "value": v, "description": "", "displayOrder": i, "hidden": False}
            for i, v in enumerate(spec.options)
        ],
        "displayOrder": -1,
        "calculated": spec.read_only and not spec.hubspot_defined,
        "externalOptions": False,
        "hasUniqueValue": name in ("email", "hs_object_id"),
        "hidden": False,
        "hubspotDefined": spec.hubspot_defined,
        "modificationMetadata": {
            "archivable": not spec.hubspot_defined,
            "readOnlyDefinition": spec.hubspot_defined,
            "readOnlyValue": spec.read_only,
        },
        "formField": not spec.read_only,
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


def object_type(raw: str) -> str | None:
    """`contacts`, `companies`, or their ids `0-1` / `0-2`; None for anything else."""
    name = OBJECT_TYPE_IDS.get(raw, raw)
    return name if name in GROUPS else None
