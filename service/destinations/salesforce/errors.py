"""Salesforce error bodies -> the service's error classes (contract §6).

Request-level errors are a JSON list of `{message, errorCode, fields}`; per-record
errors inside an sObject Collections result use `statusCode` instead of
`errorCode`. Remote text is redacted before it becomes a status message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.destinations.answers import text_of
from service.errors import (
    AuthFailed,
    DeliveryError,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from service.http import error_for_status
from service.redact import redact

# Worth another attempt: row locks clear, limits recover, servers come back.
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"}
)


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
    lowered = code.lower() if code else None
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(text, code=lowered or "server_error", http_status=status)
    return error_for_status(status, text, code=lowered, retry_after=limit_retry_s)


def record_error(errors: Sequence[Any], obj: str) -> DeliveryError:
    """One record's failure inside a 200 OK collection answer."""
    code, message = first_error(list(errors))
    fields = errors[0].get("fields") if errors and isinstance(errors[0], Mapping) else None
    names = [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []
    where = f"{obj}.{','.join(names)}" if names else obj
    text = _clean(f"Salesforce {code or 'error'} on {where}: {message}")
    lowered = code.lower() if code else "rejected"
    if code in TRANSIENT_CODES:
        return TransientError(text, code=lowered)
    return PermanentError(text, code=lowered)
