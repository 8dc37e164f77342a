"""Airtable answers -> the service's errors (docs/airtable.md, "Errors").

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

from service.errors import DeliveryError, PermanentError
from service.http import error_for_status, retry_after_seconds
from service.redact import redact

PENALTY_S = 30.0  # "will need to wait 30 seconds before subsequent requests will succeed"
RECORD_GONE = frozenset({"MODEL_ID_NOT_FOUND", "ROW_DOES_NOT_EXIST"})
_QUOTED = re.compile(r'"+([^"]+)"+')


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
