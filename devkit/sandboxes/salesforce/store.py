"""The sandbox's records: per-object field metadata, ids, validation, errors.

Errors carry Salesforce's codes and message shapes: request-level ones become a
JSON list of `{message, errorCode, fields}`, per-record ones a SaveResult's
`errors: [{statusCode, message, fields}]`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devkit.sandboxes.salesforce.duplicates import DuplicateRule, duplicate_result, duplicates
from devkit.sandboxes.salesforce.schema import SfField, json_refusal, value_refusal
from devkit.sandboxes.salesforce.soql import fold

PREFIX = {"Lead": "00Q", "Contact": "003", "Account": "001"}
_TS = {
    "TS_Score__c": 255,
    "TS_Reasoning__c": 131_072,
    "TS_Evaluated_At__c": None,
    "TS_Evaluated_On__c": None,
}
# Field -> max length (None: not a text field). What a customer's org would hold.
_PERSON = {"Id": 18, "Name": 121, "FirstName": 40, "LastName": 80, "Email": 80, "TS_Lead_Id__c": 64}
FIELDS: dict[str, dict[str, int | None]] = {
    "Lead": {
        **_PERSON,
        "Company": 255,
        "Website": 255,
        "Status": 40,
        "OwnerId": 18,
        "IsConverted": None,
        "ConvertedContactId": 18,
        "ConvertedAccountId": 18,
        "TS_Propensity__c": 255,
        **_TS,
    },
    "Contact": {**_PERSON, "AccountId": 18, **_TS},
    "Account": {"Id": 18, "Name": 255, "Website": 255, "TS_Domain__c": 255, **_TS},
}
FIELDS["Account"]["TS_Propensity__c"] = 255
SYSTEM = ("CreatedDate", "LastModifiedDate")
READ_ONLY = {
    "Lead": {"Id", "Name", "IsConverted", "ConvertedContactId", "ConvertedAccountId"},
    "Contact": {"Id", "Name"},
    "Account": {"Id"},
}
CONVERTED = "cannot reference converted lead"
REQUIRED = {"Lead": ("LastName", "Company"), "Contact": ("LastName",), "Account": ("Name",)}
EXTERNAL_IDS = {
    "Lead": {"TS_Lead_Id__c"},
    "Contact": {"TS_Lead_Id__c"},
    "Account": {"TS_Domain__c"},
}
_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")
# A validation rule: (object, record after the change) -> message, or None to accept.
Rule = Callable[[str, Mapping[str, Any]], str | None]


class SfError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        extra: dict[str, Any] | None = None,  # single-record answers only (duplicateResut)
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []
        self.extra = extra or {}

    def body(self) -> list[dict[str, Any]]:
        return [{**self.extra, "message": self.message, "errorCode": self.code,
                 "fields": self.fields}]  # fmt: skip

    def save_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Store:
    fields: dict[str, dict[str, int | None]] = field(
        default_factory=lambda: {k: dict(v) for k, v in FIELDS.items()}
    )
    records: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {k: {} for k in FIELDS}
    )
    deleted: set[str] = field(default_factory=set)
    locked: set[str] = field(default_factory=set)  # ids answering UNABLE_TO_LOCK_ROW
    rules: list[Rule] = field(default_factory=list)
    # Declared field types (devkit/sandboxes/salesforce/schema.py): only these are enforced.
    types: dict[str, dict[str, SfField]] = field(default_factory=dict)
    duplicate_rules: list[DuplicateRule] = field(default_factory=list)
    # The org's active Lead assignment rule: the owner it assigns, None when there is none.
    assignment_owner: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Opt-in secondary indexes (`index()`): (object, field) -> folded value -> ids.
    _indexes: dict[tuple[str, str], dict[Any, set[str]]] = field(default_factory=dict)

    def index(self, obj: str, name: str) -> None:
        """Index `obj.name` for `IN`/`=` lookups, as Salesforce indexes Email: a benchmark
        over many thousand records then measures the client, not the sandbox's scan.
        Kept up to date by create() and update(); a record changed behind the store's
        back is not seen by an indexed lookup."""
        entries: dict[Any, set[str]] = {}
        for rid, rec in self.records[obj].items():
            entries.setdefault(fold(rec.get(name)), set()).add(rid)
        self._indexes[obj, name] = entries

    def indexed(self, obj: str, name: str, values: frozenset[Any]) -> list[str] | None:
        """Ids whose `name` folds to one of `values`, oldest first; None: not indexed."""
        entries = self._indexes.get((obj, name))
        if entries is None:
            return None
        found = set().union(*(entries.get(v, ()) for v in values))
        return sorted(found)  # ids count up from create(): creation order

    def _reindex(self, obj: str, rid: str, before: Mapping[str, Any]) -> None:
        for (o, name), entries in self._indexes.items():
            if o == obj:
                entries.get(fold(before.get(name)), set()).discard(rid)
                entries.setdefault(fold(self.records[obj][rid].get(name)), set()).add(rid)

    def object_fields(self, obj: str) -> dict[str, int | None]:
        if obj not in self.fields:
            raise SfError(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        return self.fields[obj]

    def check_names(self, obj: str, names: list[str] | Mapping[str, Any]) -> None:
        """Unknown fields, and values of a declared type that JSON cannot read (a
        date-time for a Date), fail the whole request, as Salesforce's JSON reader does."""
        known = self.object_fields(obj)
        for name in names:
            if name not in known and name not in SYSTEM:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {obj}",
                    [name],
                )
        declared = self.types.get(obj, {})
        for name in names:
            spec = declared.get(name)
            if spec is not None and isinstance(names, Mapping):
                refused = json_refusal(name, spec, names[name])
                if refused is not None:
                    raise SfError(400, "JSON_PARSER_ERROR", refused)

    def resolve(self, obj: str, rid: str) -> str:
        """The stored 18-character id for `rid`, or the error Salesforce gives."""
        if not _ID.fullmatch(rid) or not rid.startswith(PREFIX.get(obj, "?")):
            raise SfError(
                400, "MALFORMED_ID", f"{obj} ID: id value of incorrect type: {rid}", ["Id"]
            )
        known = rid if len(rid) == 18 else None
        if known is None:  # a 15-character id is the case-sensitive prefix of the 18
            chain = itertools.chain(self.records[obj], self.deleted)
            known = next((k for k in chain if k[:15] == rid), None)
        if known in self.deleted:
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        if known is None or known not in self.records[obj]:
            raise SfError(404, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        return known

    def _validate(
        self,
        obj: str,
        values: Mapping[str, Any],
        current: Mapping[str, Any],
        rid: str | None = None,
        allow_save: bool | None = None,
    ) -> None:
        limits = self.object_fields(obj)
        declared = self.types.get(obj, {})
        for name, value in values.items():
            spec = declared.get(name)
            locked = spec is not None and not (spec.updateable if rid else spec.createable)
            if name in READ_ONLY[obj] or name in SYSTEM or locked:
                message = f"Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."  # noqa: E501
                raise SfError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", message, [name])
            limit = limits.get(name)
            if isinstance(value, str) and limit is not None and len(value) > limit:
                message = f"{name}: data value too large: {value[:20]}... (max length={limit})"
                raise SfError(400, "STRING_TOO_LONG", message, [name])
            refused = value_refusal(name, spec, value) if spec is not None else None
            if refused is not None:
                raise SfError(400, *refused)
        merged = {**current, **values}
        missing = [f for f in REQUIRED[obj] if not merged.get(f)]
        if missing:
            message = f"Required fields are missing: [{', '.join(missing)}]"
            raise SfError(400, "REQUIRED_FIELD_MISSING", message, missing)
        for rule in self.rules:
            if (broken := rule(obj, merged)) is not None:
                raise SfError(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", broken, [])
        if allow_save is not None:  # only API writes meet the org's duplicate rules
            self._check_duplicates(obj, merged, rid, allow_save)

    def _check_duplicates(
        self, obj: str, merged: Mapping[str, Any], rid: str | None, allow_save: bool
    ) -> None:
        for rule in self.duplicate_rules:
            if rule.object != obj or (rule.action == "allow" and allow_save):
                continue
            found = duplicates(rule, self.records[obj], merged, rid)
            if found:
                rule.matches.extend(found)
                extra = {"duplicateResut": duplicate_result(rule, obj, found, "v62.0")}
                raise SfError(400, "DUPLICATES_DETECTED", rule.message, [], extra)

    def create(self, obj: str, values: Mapping[str, Any], *, allow_save: bool | None = None) -> str:
        """`allow_save`: None for a write that bypasses duplicate rules (seeding),
        else whether the request sent `Sforce-Duplicate-Rule-Header: allowSave=true`."""
        if any(k.lower() == "id" for k in values):
            raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        self._validate(obj, values, {}, None, allow_save)
        rid = f"{PREFIX[obj]}5g0000{next(self._ids):06d}AAA"
        stamp = _now()
        extra = {"IsConverted": False} if obj == "Lead" else {}
        self.records[obj][rid] = {
            **extra,
            **values,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
        }
        self._reindex(obj, rid, {})
        return rid

    def assign(self, obj: str, rid: str) -> None:
        """What an active assignment rule does to a Lead it is applied to."""
        if obj == "Lead" and self.assignment_owner is not None:
            self.records[obj][rid]["OwnerId"] = self.assignment_owner

    def convert(self, lead_id: str) -> str:
        """Convert a Lead (as Database.convertLead does): a new Contact and Account; the
        Lead becomes read-only with IsConverted and the Converted*Id fields set."""
        lead = self.records["Lead"][self.resolve("Lead", lead_id)]
        contact = self.create(
            "Contact",
            {k: lead[k] for k in ("FirstName", "LastName", "Email") if lead.get(k)},
        )
        account = self.create("Account", {"Name": lead.get("Company") or "Unknown"})
        lead.update(IsConverted=True, ConvertedContactId=contact, ConvertedAccountId=account)
        return contact

    def update(
        self, obj: str, rid: str, values: Mapping[str, Any], *, allow_save: bool | None = None
    ) -> str:
        rid = self.resolve(obj, rid)
        if obj == "Lead" and self.records[obj][rid].get("IsConverted"):
            raise SfError(400, "CANNOT_UPDATE_CONVERTED_LEAD", CONVERTED, [])
        if rid in self.locked:
            message = f"unable to obtain exclusive access to this record or 1 records: {rid}"
            raise SfError(400, "UNABLE_TO_LOCK_ROW", message)
        self._validate(obj, values, self.records[obj][rid], rid, allow_save)
        before = dict(self.records[obj][rid]) if self._indexes else {}
        self.records[obj][rid].update(values, LastModifiedDate=_now())
        self._reindex(obj, rid, before)
        return rid

    def view(
        self, obj: str, rid: str, version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        data = {"Id": rid, **self.records[obj][rid]}
        if obj in ("Lead", "Contact"):
            data["Name"] = " ".join(filter(None, (data.get("FirstName"), data.get("LastName"))))
        picked = {f: data.get(f) for f in fields} if fields else data
        return {
            "attributes": {"type": obj, "url": f"/services/data/{version}/sobjects/{obj}/{rid}"},
            **picked,
        }

    def find(self, obj: str, name: str, value: str) -> list[str]:
        folded = value.casefold()
        return [
            rid
            for rid, rec in self.records[obj].items()
            if str(rec.get(name, "")).casefold() == folded
        ]
