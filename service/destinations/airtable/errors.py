"""Airtable answers -> the service's errors (docs/airtable.md, "Errors"), and the
records an answer holds (any other shape is `bad_response`).

Airtable error bodies are `{"error": {"type": ..., "message": ...}}`, or a bare
`{"error": "NOT_FOUND"}` for unknown routes. Three scopes:

- whole batch: 401, 403, 429, 5xx (raised from `write`);
- whole target: 404 for the table, other 4xx (every item of that table fails);
- record level: 422, 413 and 404 for a record id (`RecordRejected`): the request
  is split until the record at fault is alone, and only it fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from service.destinations.airtable.plan import DESTINATION
from service.destinations.answers import unreadable
from service.destinations.http import error_for_status, retry_after_seconds
from service.errors import DeliveryError, PermanentError
from service.redact import redact

PENALTY_S = 30.0  # "will need to wait 30 seconds before subsequent requests will succeed"
RECORD_GONE = frozenset({"MODEL_ID_NOT_FOUND", "ROW_DOES_NOT_EXIST"})
# A value a field refuses: a select option it does not have, a type it cannot take.
VALUE_TYPES = frozenset({"INVALID_MULTIPLE_CHOICE_OPTIONS", "INVALID_VALUE_FOR_COLUMN"})
_QUOTED = re.compile(r'"+([^"]+)"+')
_FIELD = re.compile(r'^Field "?([^"]+?)"? can ?not accept')


class RecordRejected(Exception):
    """A request refused for what one of its records holds."""

    def __init__(self, error: PermanentError, airtable_type: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.airtable_type = airtable_type

    def applies_to_all(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """An unknown column that every record sends: splitting would not isolate anything."""
        if self.airtable_type != "UNKNOWN_FIELD_NAME":
            return False
        named = _QUOTED.search(self.error.message)
        return named is not None and all(named.group(1) in r.get("fields", {}) for r in records)

    def for_record(self, table: str, fields: Mapping[str, Any]) -> PermanentError:
        """The error of the one record left in a refused request: `invalid_value`, naming
        the field and the value, when Airtable refused a value; else as classified."""
        if self.airtable_type not in VALUE_TYPES:
            return self.error
        _, text = self.error.message.split(": ", 1) if ": " in self.error.message else ("", "")
        field = (named.group(1) if (named := _FIELD.search(text)) else None) or None
        option = _QUOTED.search(text) if field is None else None
        value: Any = fields.get(field) if field is not None else None
        if option is not None:  # "create new select option ""hot""": find who sent it
            value = option.group(1)
            field = next((k for k, v in fields.items() if _holds(v, value)), None)
        where = f"{table}.{field}" if field else table
        shown = repr(value) if isinstance(value, str | int | float | list) else "a value"
        text = f"Airtable refused {shown} for {where}: {self.airtable_type}: {text}"
        status = self.error.http_status
        return PermanentError(redact(text)[:1000], code="invalid_value", http_status=status)


def _holds(cell: Any, value: str) -> bool:
    return cell == value or (isinstance(cell, list) and value in cell)


def error_parts(body: Any) -> tuple[str, str]:
    """(type, message) from an Airtable error body, whatever its shape."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or ""), str(error.get("message") or "")
    if isinstance(error, str):
        return error, ""
    return "", str(body or "")[:300]


def classify(
    status: int, body: Any, headers: Mapping[str, str], penalty_s: float = PENALTY_S
) -> DeliveryError | RecordRejected:
    kind, text = error_parts(body)
    message = redact(f"Airtable {status} {kind}: {text}".rstrip(": "))[:1000]
    code = kind.lower() or None
    if status == 404 and kind in RECORD_GONE:
        return RecordRejected(PermanentError(message, code="record_deleted", http_status=404), kind)
    if status == 404:
        return PermanentError(message, code="table_not_found", http_status=404)
    if status == 422 and kind in RECORD_GONE:
        return RecordRejected(PermanentError(message, code="record_deleted", http_status=422), kind)
    if status in (413, 422):
        fallback = "payload_too_large" if status == 413 else "invalid_request"
        error = PermanentError(message, code=code or fallback, http_status=status)
        return RecordRejected(error, kind)
    if status == 403:
        return error_for_status(status, message, code="forbidden")
    if status == 429 or status >= 500:
        # Airtable sends no Retry-After: its documented penalty is 30 s for the whole base.
        retry_after = retry_after_seconds(headers, penalty_s)
        return error_for_status(status, message, retry_after=retry_after)
    return error_for_status(status, message, code=code)


def records_of(body: Any) -> list[dict[str, Any]]:
    """The `records` of an answer, each with a string id; else `bad_response`."""
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"] for r in records
    ):
        raise unreadable(DESTINATION, "without a records list with ids")
    return records


def created_ids(answer: Any) -> set[str]:
    """An upsert's `createdRecords` (ids); absent: none were created."""
    created = answer.get("createdRecords") if isinstance(answer, dict) else None
    if created is None:
        return set()
    if not isinstance(created, list) or not all(isinstance(i, str) for i in created):
        raise unreadable(DESTINATION, "an upsert whose createdRecords is not a list of ids")
    return set(created)


def matched(records: list[dict[str, Any]], column: str) -> list[tuple[str, str]]:
    """(value, id) of records found by `{column} = value`: each must hold a text value
    in that column (a record that matched cannot lack it), else `bad_response`."""
    out: list[tuple[str, str]] = []
    for record in records:
        fields = record.get("fields")
        value = fields.get(column) if isinstance(fields, dict) else None
        if not isinstance(value, str):
            raise unreadable(DESTINATION, f"a record found by {column} without its value")
        out.append((value, record["id"]))
    return out
