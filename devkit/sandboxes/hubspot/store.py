"""The sandbox's CRM data: contacts and companies, their property definitions,
and validation the way HubSpot answers it (VALIDATION_ERROR bodies).

Sandbox approximations (not verified against HubSpot byte for byte): the codes
INVALID_STRING_LENGTH and INVALID_DATETIME, and the exact message wordings.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any, NamedTuple

from devkit.sandboxes.hubspot.properties import HsProperty, issue

OBJECTS = ("contacts", "companies")
TEXT_MAX = 65_536
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
CUSTOM = {"ts_score": "string", "ts_reasoning": "string", "ts_evaluated_at": "datetime"}
DEFAULT_PROPERTIES: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "string",
        "firstname": "string",
        "lastname": "string",
        "company": "string",
        "phone": "string",
        "website": "string",
        **CUSTOM,
    },
    "companies": {
        "name": "string",
        "domain": "string",
        "website": "string",
        "phone": "string",
        **CUSTOM,
        "ts_propensity": "string",
    },
}
DEFAULT_READ = {  # what a read returns when no `properties` are asked for
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_object_id", "lastmodifieddate", "name"),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Reject = Callable[[str, dict[str, Any]], "tuple[str, str] | None"]


class Issue(NamedTuple):
    name: str
    code: str
    message: str


def iso(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def correlation() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation(),
        "category": category,
        **extra,
    }


def validation_error(issues: list[Issue], **extra: Any) -> dict[str, Any]:
    detail = [
        {"isValid": False, "message": i.message, "error": i.code, "name": i.name} for i in issues
    ]
    errors = [
        {"message": i.message, "code": i.code, "context": {"propertyName": [i.name]}}
        for i in issues
    ]
    return error_body(
        f"Property values were not valid: {json.dumps(detail, separators=(',', ':'))}",
        "VALIDATION_ERROR",
        errors=errors,
        **extra,
    )


@dataclass
class Rec:
    id: str
    properties: dict[str, str]
    created: datetime
    updated: datetime
    born: float = field(default_factory=monotonic)  # for the search index lag

    def json(
        self, props: list[str] | None = None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        meta = {
            "hs_object_id": self.id,
            "createdate": iso(self.created),
            "lastmodifieddate": iso(self.updated),
        }
        values: dict[str, str | None] = {**self.properties, **meta}
        if props is not None:
            values = {k: values.get(k) for k in {*props, *meta}}
        return {
            "id": self.id,
            "properties": values,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": False,
            **(extra or {}),
        }


class Store:
    def __init__(self, properties: dict[str, dict[str, str | HsProperty]] | None = None) -> None:
        self.schema = {o: dict(DEFAULT_PROPERTIES[o]) for o in OBJECTS}
        # Declared definitions (properties.py): only these are option- and read-only-checked.
        self.defs: dict[str, dict[str, HsProperty]] = {o: {} for o in OBJECTS}
        for obj, extra in (properties or {}).items():
            for name, kind in extra.items():
                self.define(obj, name, kind)
        self.records: dict[str, dict[str, Rec]] = {o: {} for o in OBJECTS}
        self.reject: Reject | None = None  # tests: refuse some values (fault injection)
        self._next = 100
        self._by_value: dict[tuple[str, str, str], set[str]] = {}
        self.merged: dict[str, str] = {}  # id merged away -> the id it was merged into

    def define(self, obj: str, name: str, kind: str | HsProperty) -> None:
        if isinstance(kind, HsProperty):
            self.defs[obj][name] = kind
            kind = kind.type
        self.schema[obj][name] = kind

    def _coerce(self, obj: str, name: str, value: Any) -> tuple[str | None, Issue | None]:
        kind = self.schema[obj].get(name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if kind is None:
            return None, Issue(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if name in READ_ONLY:
            return None, Issue(name, "READ_ONLY_VALUE", f'"{name}" is a read only property')
        spec = self.defs[obj].get(name)
        refused = issue(name, spec, text) if spec is not None else None
        if refused is not None:
            return None, Issue(name, *refused)
        if kind == "datetime":
            return _datetime(name, text)
        if kind == "date":
            return _date(name, text)
        if len(text) > TEXT_MAX:
            return None, Issue(
                name,
                "INVALID_STRING_LENGTH",
                f"{name} is {len(text)} characters, over the limit of {TEXT_MAX}",
            )
        if name == "email" and text and not _EMAIL.match(text):
            return None, Issue(name, "INVALID_EMAIL", f"Email address {text} is invalid")
        return text, None

    def validate(self, obj: str, props: Any) -> tuple[dict[str, str], list[Issue]]:
        clean: dict[str, str] = {}
        issues: list[Issue] = []
        for name, value in (props or {}).items():
            if value is None:
                continue
            text, issue = self._coerce(obj, name, value)
            if issue:
                issues.append(issue)
            elif text is not None:
                clean[name] = text
        refused = self.reject(obj, clean) if self.reject and not issues else None
        if refused:
            issues.append(Issue("", refused[0], refused[1]))
        return clean, issues

    def create(self, obj: str, props: dict[str, str]) -> Rec:
        self._next += 1
        now = datetime.now(UTC)
        rec = Rec(str(self._next), dict(props), now, now)
        self.records[obj][rec.id] = rec
        self._index(obj, rec)
        return rec

    def update(self, rec: Rec, props: dict[str, str]) -> None:
        obj = next(o for o in OBJECTS if self.records[o].get(rec.id) is rec)
        self._unindex(obj, rec)
        rec.properties.update(props)
        rec.updated = datetime.now(UTC)
        self._index(obj, rec)

    def remove(self, obj: str, key: str) -> None:
        rec = self.records[obj].pop(key, None)
        if rec is not None:
            self._unindex(obj, rec)

    def merge(self, obj: str, primary: str, secondary: str) -> None:
        """POST /crm/v3/objects/{obj}/merge: the secondary record is gone, its id now
        leads to the primary (single reads follow it; batch writes do not, see
        docs/hubspot.md), and the primary lists it in hs_merged_object_ids."""
        rec = self.records[obj][primary]
        self.remove(obj, secondary)
        self.merged[secondary] = primary
        ids = [i for i in rec.properties.get("hs_merged_object_ids", "").split(";") if i]
        rec.properties["hs_merged_object_ids"] = ";".join([*ids, secondary])

    def get(
        self, obj: str, key: str, id_property: str | None = None, *, follow: bool = False
    ) -> Rec | None:
        if not id_property or id_property == "hs_object_id":
            key = self.merged.get(str(key), str(key)) if follow else str(key)
            return self.records[obj].get(key)
        ids = self._by_value.get((obj, id_property, str(key).lower()))
        return self.records[obj][min(ids, key=int)] if ids else None

    # An index on every property value (lower case), so lookups stay O(1).
    def _index(self, obj: str, rec: Rec) -> None:
        for name, value in rec.properties.items():
            self._by_value.setdefault((obj, name, value.lower()), set()).add(rec.id)

    def _unindex(self, obj: str, rec: Rec) -> None:
        for name, value in rec.properties.items():
            self._by_value.get((obj, name, value.lower()), set()).discard(rec.id)


def _datetime(name: str, text: str) -> tuple[str | None, Issue | None]:
    try:
        if text.isdigit():
            return iso(datetime.fromtimestamp(int(text) / 1000, UTC)), None
        return iso(datetime.fromisoformat(text.replace("Z", "+00:00"))), None
    except ValueError:
        return None, Issue(name, "INVALID_DATETIME", f"{text} is not a valid datetime")


def _date(name: str, text: str) -> tuple[str | None, Issue | None]:
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, UTC)
        if moment.hour or moment.minute or moment.second or moment.microsecond:
            at = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
            return None, Issue(name, "INVALID_DATE", f"{text} is at {at} UTC, not midnight!")
        return moment.strftime("%Y-%m-%d"), None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text, None
    return None, Issue(name, "INVALID_DATE", f"{text} is not a valid date")
