"""Active duplicate rules of the Salesforce sandbox (`sandbox.duplicate_rule(...)`).

A blocked save answers DUPLICATES_DETECTED with the rule's message. A single-record
call also carries the DuplicateResult, under the key Salesforce itself spells
`duplicateResut`; an sObject Collections answer has only `{statusCode, message,
fields}` per record, as in Salesforce's own example. `Sforce-Duplicate-Rule-Header:
allowSave=true` saves past a rule whose action is "allow" (with an alert), never
past a "block" rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DuplicateRule:
    """An active duplicate rule whose matching rule compares `fields` exactly
    (case-insensitive). `action`: "block", or "allow" (allow with an alert)."""

    object: str
    fields: tuple[str, ...]
    action: str = "block"
    name: str = "TS_Sandbox_Duplicate_Rule"
    message: str = "Use one of these records?"
    matches: list[str] = field(default_factory=list)  # ids it reported, for tests


def duplicates(
    rule: DuplicateRule,
    records: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, Any],
    own_id: str | None,
) -> list[str]:
    """Ids of other records the rule's matching rule finds for `values`."""
    wanted = [str(values.get(f) or "").casefold() for f in rule.fields]
    if not all(wanted):
        return []
    return [
        rid
        for rid, rec in records.items()
        if rid != own_id and [str(rec.get(f) or "").casefold() for f in rule.fields] == wanted
    ]


def duplicate_result(rule: DuplicateRule, obj: str, ids: Iterable[str], version: str) -> Any:
    """The DuplicateResult Salesforce puts beside a single-record DUPLICATES_DETECTED."""
    found = [
        {
            "additionalInformation": [],
            "fieldDiffs": [],
            "matchConfidence": 100.0,
            "record": {
                "attributes": {"type": obj, "url": f"/services/data/{version}/sobjects/{obj}/{i}"},
                "Id": i,
            },
        }
        for i in ids
    ]
    return {
        "allowSave": rule.action == "allow",
        "duplicateRule": rule.name,
        "duplicateRuleEntityType": obj,
        "errorMessage": rule.message,
        "matchResults": [
            {
                "entityType": obj,
                "errors": [],
                "matchEngine": "ExactMatchEngine",
                "matchRecords": found,
                "rule": f"{rule.name}_Matching",
                "size": len(found),
                "success": True,
            }
        ],
    }


def allow_save(header: str | None) -> bool:
    """`Sforce-Duplicate-Rule-Header: allowSave=true; includeRecordDetails=false`."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip() == "allowSave":
            return value.strip().lower() == "true"
    return False
