"""Salesforce error bodies -> the service's error classes (contract §6).

Request-level errors are a JSON list of `{message, errorCode, fields}`; per-record
errors inside an sObject Collections result use `statusCode` instead of
`errorCode`. Remote text is redacted before it becomes a status message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from service.destinations.answers import text_of
from service.destinations.http import error_for_status
from service.errors import (
    AuthFailed,
    DeliveryError,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from service.redact import redact

# Worth another attempt: row locks clear, limits recover, servers come back.
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"}
)


# A value the field refuses for its type or its allowed values: `invalid_value`, at once.
VALUE_CODES = frozenset(
    {
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "INVALID_EMAIL_ADDRESS",
    }
)  # STRING_TOO_LONG stays `string_too_long`: max_lengths fixes it (docs/salesforce.md)
DUPLICATES = "DUPLICATES_DETECTED"
_PICKED = re.compile(r"bad value for restricted picklist field: (.{1,255})$")
_UNREADABLE_VALUE = re.compile(r"Cannot deserialize instance of \w+ from \w+ value (.{1,255}?) or ")


def _clean(text: str) -> str:
    return redact(text)[:1000]


def first_error(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) of a request-level error body, whatever its shape."""
    entry: Any = body[0] if isinstance(body, list) and body else body
    if isinstance(entry, Mapping):
        code = text_of(entry.get("errorCode")) or text_of(entry.get("statusCode"))
        return (code or None), text_of(entry.get("message"))[:1000]
    return None, text_of(body)[:300]


def request_error(
    status: int, body: Any, *, quota_retry_s: float, limit_retry_s: float
) -> DeliveryError:
    """A whole request failed: what that means for the records in it."""
    code, message = first_error(body)
    text = _clean(f"Salesforce {code or status}: {message}".rstrip(": "))
    if status == 401 or code == "INVALID_SESSION_ID":
        return AuthFailed(text, http_status=status)
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The org's rolling 24 h allocation is spent ("TotalRequests Limit exceeded"):
        # wait, without spending attempts. Otherwise too many long-running requests.
        if "TotalRequests" in message:
            return QuotaExhausted(
                text, retry_after=quota_retry_s, code="request_limit_exceeded", http_status=status
            )
        return RateLimited(
            text, retry_after=limit_retry_s, code="request_limit_exceeded", http_status=status
        )
    if code == DUPLICATES:
        return duplicate(body, message, None, http_status=status)
    if code == "JSON_PARSER_ERROR" and (value := _UNREADABLE_VALUE.search(message)):
        # A value the field's type cannot take (a date-time for a Date): every record sends it.
        text = f"Salesforce refused {value.group(1)!r} for its field's type: {message}"
        return PermanentError(_clean(text), code="invalid_value", http_status=status)
    lowered = code.lower() if code else None
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(text, code=lowered or "server_error", http_status=status)
    return error_for_status(status, text, code=lowered, retry_after=limit_retry_s)


def duplicate(
    body: Any, message: str, obj: str | None, http_status: int | None = None
) -> PermanentError:
    """DUPLICATES_DETECTED: `duplicate_detected` with the rule's message (and its name, from
    the DuplicateResult Salesforce spells `duplicateResut`; either spelling is read)."""
    entry: Any = body[0] if isinstance(body, list) and body else body
    result = None
    if isinstance(entry, Mapping):
        result = entry.get("duplicateResult") or entry.get("duplicateResut")
    rule = text_of(result.get("duplicateRule")) if isinstance(result, Mapping) else ""
    where = f" on {obj}" if obj else ""
    by = f" (duplicate rule {rule})" if rule else ""
    text = f"Salesforce {DUPLICATES}{where}{by}: {message or 'duplicates detected'}"
    return PermanentError(_clean(text), code="duplicate_detected", http_status=http_status)


def refused_value(
    code: str, message: str, names: list[str], obj: str, sent: Mapping[str, Any]
) -> PermanentError:
    """`invalid_value`, naming the field and the value we sent there."""
    field = names[0] if names else None
    value = sent.get(field) if field is not None else None
    if value is None and (picked := _PICKED.search(message)):
        value = picked.group(1)
    where = f"{obj}.{field}" if field else obj
    shown = f"{value!r}" if isinstance(value, str | int | float) else "a value"
    text = f"Salesforce refused {shown} for {where}: {code}: {message}"
    return PermanentError(_clean(text), code="invalid_value")


def record_error(
    errors: Sequence[Any], obj: str, sent: Mapping[str, Any] | None = None
) -> DeliveryError:
    """One record's failure inside a 200 OK collection answer; `sent`: the record's fields."""
    code, message = first_error(list(errors))
    fields = errors[0].get("fields") if errors and isinstance(errors[0], Mapping) else None
    names = [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []
    if code == DUPLICATES:
        return duplicate(list(errors), message, obj)
    if code in VALUE_CODES:
        return refused_value(code, message, names, obj, sent or {})
    where = f"{obj}.{','.join(names)}" if names else obj
    text = _clean(f"Salesforce {code or 'error'} on {where}: {message}")
    lowered = code.lower() if code else "rejected"
    if code in TRANSIENT_CODES:
        return TransientError(text, code=lowered)
    return PermanentError(text, code=lowered)
