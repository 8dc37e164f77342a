"""Field types, picklists and duplicate rules for the Salesforce sandbox.

A test declares a field's type (`sandbox.define("Lead", {"Rating": SfField(...)})`)
or an active duplicate rule (`sandbox.duplicate_rule(...)`); only those are
enforced, so a test that sets neither sees the sandbox exactly as before. Every
field is described (`GET sobjects/{Object}/describe`) with the documented keys:
name, label, type, length, updateable, createable, nillable, filterable,
picklistValues[].value/active, restrictedPicklist, referenceTo.

Refusals, as Salesforce words them:
- restricted picklist: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST,
  "{Label}: bad value for restricted picklist field: {value}", fields [name];
- read-only field: INVALID_FIELD_FOR_INSERT_UPDATE (see store.py);
- email: INVALID_EMAIL_ADDRESS, "{Label}: invalid email address: {value}";
- a value JSON cannot turn into the field's type (a date-time for a Date, text
  for a number): the whole request fails, JSON_PARSER_ERROR "Cannot deserialize
  instance of date from VALUE_STRING value ..." (approximated wording);
- duplicate rule: DUPLICATES_DETECTED (duplicates.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TEXT_TYPES = frozenset({"string", "textarea", "picklist", "multipicklist", "url", "phone"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# (code, message, fields): a refusal the store turns into an SfError
Refusal = tuple[str, str, list[str]]


@dataclass(frozen=True)
class SfField:
    """A field as a describe call shows it; `values` are the active picklist values."""

    type: str = "string"
    length: int = 255
    values: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    restricted: bool = False
    updateable: bool = True
    createable: bool = True
    label: str | None = None
    reference_to: tuple[str, ...] = ()

    def max_length(self) -> int | None:
        return self.length if self.type in TEXT_TYPES else None


def label_of(name: str, spec: SfField | None = None) -> str:
    if spec is not None and spec.label:
        return spec.label
    return name.removesuffix("__c").replace("_", " ")


def derived(obj: str, name: str, length: int | None, read_only: bool) -> SfField:
    """What describe says of a field nobody declared (the sandbox's defaults)."""
    fixed = not read_only
    if name == "Id":
        return SfField("id", 18, updateable=False, createable=False)
    if name.endswith("Id") and length == 18:
        target = {"Owner": ("User",), "ConvertedContact": ("Contact",)}.get(name[:-2])
        parent = target or (name[:-2].removeprefix("Converted"),)
        return SfField("reference", 18, updateable=fixed, createable=fixed, reference_to=parent)
    if length is None:
        kind = "boolean" if name.startswith("Is") else "date" if "_On_" in name else "datetime"
        return SfField(kind, 0, updateable=fixed, createable=fixed)
    kind = {"Email": "email", "Website": "url"}.get(name, "string" if length <= 255 else "textarea")
    return SfField(kind, length, updateable=fixed, createable=fixed)


def describe_field(name: str, spec: SfField, *, external_id: bool) -> dict[str, Any]:
    picklist = [
        {"active": active, "defaultValue": False, "label": v, "validFor": None, "value": v}
        for active, values in ((True, spec.values), (False, spec.inactive))
        for v in values
    ]
    return {
        "name": name,
        "label": label_of(name, spec),
        "type": spec.type,
        "length": spec.length if spec.type in TEXT_TYPES else 0,
        "custom": name.endswith("__c"),
        "updateable": spec.updateable,
        "createable": spec.createable,
        "nillable": name != "Id",
        "filterable": spec.type != "textarea" or spec.length <= 255,
        "externalId": external_id,
        "idLookup": name == "Id" or external_id,
        "picklistValues": picklist,
        "restrictedPicklist": spec.restricted,
        "referenceTo": list(spec.reference_to),
        "defaultValue": None,
        "soapType": "xsd:" + _SOAP.get(spec.type, "string"),
    }


_SOAP = {"double": "double", "date": "date", "datetime": "dateTime", "boolean": "boolean",
         "id": "ID", "reference": "ID", "int": "int"}  # fmt: skip


def json_refusal(name: str, spec: SfField, value: Any) -> str | None:
    """The deserialisation error for a value the field's type cannot hold."""
    if value is None or (isinstance(value, bool) and spec.type == "boolean"):
        return None
    kind = spec.type
    ok = True
    if kind == "date":
        ok = isinstance(value, str) and bool(_DATE.fullmatch(value))
    elif kind == "datetime":
        ok = isinstance(value, str) and _is_datetime(value)
    elif kind in ("double", "currency", "percent", "int"):
        ok = (isinstance(value, int | float) and not isinstance(value, bool)) or _numeric(value)
    elif kind == "boolean":
        ok = False
    if ok:
        return None
    token = "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_STRING"
    shown = {"datetime": "datetime", "int": "int", "boolean": "boolean"}.get(kind, kind)
    if kind in ("currency", "percent"):
        shown = "double"
    return (
        f"Cannot deserialize instance of {shown} from {token} value {value} "
        "or request may be missing a required field"
    )


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


def _numeric(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def value_refusal(name: str, spec: SfField, value: Any) -> Refusal | None:
    """A per-record refusal (a SaveResult error) for a value of a declared field."""
    if value is None or value == "":
        return None
    label = label_of(name, spec)
    if spec.type in ("picklist", "multipicklist") and spec.restricted:
        chosen = str(value).split(";") if spec.type == "multipicklist" else [str(value)]
        bad = next((v for v in chosen if v not in spec.values), None)
        if bad is not None:
            message = f"{label}: bad value for restricted picklist field: {bad}"
            return "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, [name]
    if spec.type == "email" and not _EMAIL.fullmatch(str(value)):
        return "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [name]
    return None
